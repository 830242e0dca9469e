"""Small networks shared by the unit tests of the landscape, compaction and PSP code."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyConv(nn.Module):
    """A LeNet-5-shaped chain small enough for brute-force checks: conv-ReLU-pool, conv-ReLU,
    two linear layers, 14 x 14 single-channel inputs, 3 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 5, 3)
        self.fc1 = nn.Linear(5 * 4 * 4, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 14 -> 12 -> 6
        x = F.relu(self.conv2(x))  # 6 -> 4
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)
