"""The ground floor: what every stage shares (records, labels, the board's words, shared
constants and the settings' helpers). Nothing here imports any other part of fer_pi, so
any stage may import it and it never drags a stage in."""
