"""OCR measured without anyone typing ground truth: text-layer PDFs drawn to images, read back by OCR.

    python bench/ocr.py [--dpi 150,300] [--pages N] [--docs NAME] [--qa] [--tesseract] [--model NAME] [--write]

The sources are the development set's budget PDFs (../shared/devset/docs/gov-*.pdf) and a law printed to PDF
here (著作权法 from the same folder, set in WenQuanYi Micro Hei with reportlab). Each page is drawn at each dpi
(pypdfium2) and wrapped as an image-only PDF: a scan with no text layer.

- Character error rate: per page, the edit distance between what OCR reads (policyqa's engine, the lines it
  returns) and the page's text layer, over the text layer's length; whitespace and leader dots (目录 lines)
  dropped on both sides, full-width forms folded (NFKC). `--pages N` takes N pages of each document, spread
  over it; `--tesseract` reads the same pages with Tesseract (chi_sim) too, when the binary is there.
- `--qa`: the development questions whose answer is in one of these documents, asked of an index of the
  originals and of an index of the scans at each dpi (whole documents: every page is read by OCR), hit@5.

Times are wall-clock seconds per page in this process; on a shared machine they say little (run it quiet).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from common import CACHE, ROOT
from policyqa.ingest import ocr
from policyqa.ingest.pdf import draw_page

DEVSET = ROOT.parent / "shared" / "devset"
LAW = "law-著作权法(2020-11-11)"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
_LEADERS = re.compile(r"[….·]{3,}")


def law_pdf(out: Path) -> Path:
    """著作权法 printed to an A4 PDF: title, chapters and articles as paragraphs, CJK line wrapping."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    pdfmetrics.registerFont(TTFont("WQY", str(FONT), subfontIndex=0))
    body = ParagraphStyle("body", fontName="WQY", fontSize=11, leading=18, wordWrap="CJK", firstLineIndent=22)
    head = ParagraphStyle("head", parent=body, fontSize=14, leading=24, alignment=1, firstLineIndent=0)
    flow = []
    for line in (DEVSET / "docs" / f"{LAW}.md").read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if text:
            flow.append(
                Paragraph(text, head if line.startswith("#") or (text.startswith("第") and "章" in text[:5]) else body)
            )
    SimpleDocTemplate(str(out), pagesize=A4, title=LAW).build(flow)
    return out


def sources() -> list[Path]:
    folder = CACHE / "ocr"
    folder.mkdir(parents=True, exist_ok=True)
    law = folder / f"{LAW}.pdf"
    if not law.exists():
        law_pdf(law)
    return [*sorted((DEVSET / "docs").glob("gov-*.pdf")), law]


def scan(pdf: Path, dpi: int, pages: list[int] | None = None) -> bytes:
    """The PDF (or these 1-based pages of it) drawn at `dpi` in grey and wrapped as an image-only PDF."""
    import pypdfium2

    data = pdf.read_bytes()
    count = len(pypdfium2.PdfDocument(data))
    images = [draw_page(data, n, dpi / 72) for n in pages or range(1, count + 1)]
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return out.getvalue()


def norm(text: str) -> str:
    return re.sub(r"\s+", "", _LEADERS.sub("", unicodedata.normalize("NFKC", text)))


def distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def text_layer(pdf: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(pdf) as doc:
        return [norm(p.extract_text() or "") for p in doc.pages]


def spread(count: int, n: int | None) -> list[int]:
    """`n` page numbers spread evenly over 1..count (all of them when n is None or larger)."""
    if n is None or n >= count:
        return list(range(1, count + 1))
    return sorted({1 + round(i * (count - 1) / max(n - 1, 1)) for i in range(n)})


@dataclass
class Tally:
    errors: int = 0
    chars: int = 0
    seconds: float = 0.0
    pages: int = 0

    def add(self, read: str, truth: str, seconds: float) -> None:
        self.errors += distance(read, truth)
        self.chars += len(truth)
        self.seconds += seconds
        self.pages += 1

    @property
    def cer(self) -> float:
        return self.errors / max(self.chars, 1)

    def row(self, engine: str) -> str:
        return f"{self.pages} | {self.chars} | {engine} | {self.cer:.2%} | {self.seconds / max(self.pages, 1):.1f}"


def tesseract(image: object, dpi: int) -> str:
    with tempfile.NamedTemporaryFile(suffix=".png") as fh:
        image.save(fh.name)  # type: ignore[attr-defined]
        cmd = ["tesseract", fh.name, "-", "-l", "chi_sim", "--dpi", str(dpi)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def character_errors(docs: list[Path], dpis: list[int], pages: int | None, with_tesseract: bool) -> list[str]:
    rows = ["| document | dpi | pages | characters | engine | CER | s/page |", "|---|---|---|---|---|---|---|"]
    totals: dict[tuple[int, str], Tally] = {}
    for pdf in docs:
        truth = text_layer(pdf)
        chosen = [n for n in spread(len(truth), pages) if truth[n - 1]]
        for dpi in dpis:
            scanned = scan(pdf, dpi, chosen)
            tallies = {"rapidocr": Tally(), **({"tesseract": Tally()} if with_tesseract else {})}
            for k, number in enumerate(chosen, 1):
                image = draw_page(scanned, k)  # the scan as policyqa draws it for OCR
                began = time.perf_counter()
                read = "".join(line.text for line in ocr.read(image))
                tallies["rapidocr"].add(norm(read), truth[number - 1], time.perf_counter() - began)
                if with_tesseract:
                    began = time.perf_counter()
                    tallies["tesseract"].add(
                        norm(tesseract(image, dpi)), truth[number - 1], time.perf_counter() - began
                    )
            for engine, t in tallies.items():
                rows.append(f"| {pdf.stem[-14:]} | {dpi} | {t.row(engine)} |")
                print(rows[-1], flush=True)
                total = totals.setdefault((dpi, engine), Tally())
                total.errors, total.chars = total.errors + t.errors, total.chars + t.chars
                total.seconds, total.pages = total.seconds + t.seconds, total.pages + t.pages
    for (dpi, engine), t in sorted(totals.items()):
        rows.append(
            f"| **all** | {dpi} | {t.pages} | {t.chars} | {engine} | **{t.cer:.2%}** | {t.seconds / t.pages:.1f} |"
        )
    return rows


def hit_at_5(docs: list[Path], dpis: list[int], model: str) -> list[str]:
    """hit@5 of the development questions over these documents: originals against scans at each dpi."""
    from policyqa.config import Settings
    from policyqa.embed import load_embedder
    from policyqa.search.evaluation import Question, evaluate, read_questions
    from policyqa.search.ranking import search
    from policyqa.snapshot import index as index_mod
    from policyqa.snapshot.refresh import refresh

    names = {p.name for p in docs} | {f"{LAW}.md"}
    questions = [
        Question(q.q, q.must, q.source.replace(".md", ".pdf"), q.fields)
        for q in read_questions(DEVSET / "qa.jsonl")
        if q.source in names and q.must
    ]
    settings = Settings.from_env()
    embedder = load_embedder(model, settings.model_dir, settings.threads)
    rows = ["| corpus | questions | hit@1 | hit@5 | MRR@10 | build s |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for label, dpi in [("text-layer originals", 0), *((f"scans at {d} dpi", d) for d in dpis)]:
            corpus = Path(tmp) / f"corpus-{dpi}"
            corpus.mkdir()
            for pdf in docs:
                (corpus / pdf.name).write_bytes(scan(pdf, dpi) if dpi else pdf.read_bytes())
            began = time.perf_counter()
            report = refresh(corpus, Path(tmp) / f"index-{dpi}", embedder, limits=settings.limits)
            seconds = time.perf_counter() - began
            idx = index_mod.load(Path(tmp) / f"index-{dpi}", embedder)
            r = evaluate(label, questions, lambda q, idx=idx: search(idx, embedder, q, 10), idx.chunks)
            rows.append(f"| {label} | {r.questions} | {r.hit1:.3f} | {r.hit5:.3f} | {r.mrr10:.3f} | {seconds:.0f} |")
            print(rows[-1], *report.errors, sep="\n", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dpi", default="150,300", help="resolutions to scan at, e.g. 150,300")
    p.add_argument("--pages", type=int, help="pages of each document for the error rate (default: all)")
    p.add_argument("--docs", help="only the documents whose file name holds this, e.g. law or 2024")
    p.add_argument("--qa", action="store_true", help="also hit@5 of the dev questions, originals against scans")
    p.add_argument("--tesseract", action="store_true", help="read the same pages with Tesseract chi_sim too")
    p.add_argument("--model", default="multilingual-e5-small", help="encoder for --qa (hash: quick check)")
    p.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    args = p.parse_args(argv)
    if not (DEVSET / "docs").is_dir():
        print(f"no development set at {DEVSET}", file=sys.stderr)
        return 1
    if args.tesseract and shutil.which("tesseract") is None:
        print("no tesseract binary: apt-get install tesseract-ocr tesseract-ocr-chi-sim", file=sys.stderr)
        return 1
    dpis = [int(d) for d in args.dpi.split(",")]
    docs = sources()
    docs = [d for d in docs if args.docs in d.name] if args.docs else docs
    began = time.perf_counter()
    out = [
        "## OCR of scans",
        "",
        "Character error rate against the text layer:",
        "",
        *character_errors(docs, dpis, args.pages, args.tesseract),
    ]
    if args.qa:
        out += [
            "",
            f"Development questions over these documents ({args.model}):",
            "",
            *hit_at_5(docs, dpis, args.model),
        ]
    command = "python bench/ocr.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out += ["", f"Reproduce: `{command}` ({time.perf_counter() - began:.0f} s)"]
    print("\n".join(out))
    if args.write:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
