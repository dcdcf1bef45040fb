"""Report rendering: Markdown and self-contained HTML from one document."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hwsim.report import Report


def test_markdown_and_html(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(tmp_path / "p.png")
    plt.close(fig)
    r = Report("T").heading("Section").para("text with `code` & <tags>")
    r.table(["a", "b"], [[1, 0.5], [123456, True]], caption="numbers")
    r.figure(tmp_path / "p.png", "a plot")
    paths = r.write(tmp_path)
    md = paths["markdown"].read_text()
    assert md.startswith("# T\n") and "| a | b |" in md and "| 123,456 | yes |" in md
    assert "![a plot](p.png)" in md
    page = paths["html"].read_text()
    assert "<code>code</code> &amp; &lt;tags&gt;" in page
    assert "data:image/png;base64,iVBOR" in page  # PNG magic, embedded
