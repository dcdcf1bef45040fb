"""Spiking visual attention (arXiv 2605.06005): event simulator, attention, SNN classifier.

:mod:`.events` (numpy only) turns static images into DVS event streams; :mod:`.attention` is
the von Mises saliency front end; :mod:`.classifier` (torch + snnTorch) holds the classifier, its
quantization-aware twin and its integer export.
"""
