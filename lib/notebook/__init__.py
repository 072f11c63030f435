"""What the numbered notebooks share (set-up, figure saving, captions, numbers.json) and one module per
notebook, ``nbNN_*``, holding that notebook's figures, tables and verdicts."""
