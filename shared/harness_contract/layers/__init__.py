"""The per-layer analysis: where an int8 model loses accuracy and what floating layers buys back."""
