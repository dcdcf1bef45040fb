"""AirFM-DDA (arXiv 2605.00020): window attention over the angle–Doppler–delay grid.

``data``: the channel-prediction task on Sionna TR 38.901 channels (numpy only);
``model``: the window-attention network and its global-attention twin (torch);
``qat``: Brevitas QAT variant; ``pipeline``: train / eval / zero-shot table;
``hardware``: one window on the attention-head golden and RTL, window-vs-global cost.
"""
