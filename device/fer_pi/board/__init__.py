"""The board: its look (layout), its cards (a pure model), its painter and its window."""
