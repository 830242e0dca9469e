"""sharpminima: reproduce "Pruning artificial neural networks: a way to find
well-generalizing, high-entropy sharp minima" (Tartaglione, Bragagnolo, Grangetto, ICANN 2020).

The library holds all the logic; the Snakemake workflow around it only wires files together.
"""

__version__ = "0.1.0"
