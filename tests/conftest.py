"""Shared fixtures: the real embedding model (loaded once), data homes, the shared corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml registers it too; this keeps `-m integration` warning-free without it
    config.addinivalue_line(
        "markers", "integration: uses the shared PDFs, the real model and a real Chroma store"
    )


@pytest.fixture(scope="session")
def shared_papers() -> Path:
    """../shared/papers next to the repository: the 45 real PDFs (skip when absent)."""
    path = SHARED / "papers"
    if not path.is_dir() or not any(path.glob("*.pdf")):
        pytest.skip(f"shared corpus not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    """../shared/eval/dev.jsonl: questions with gold (paper, pages) (skip when absent)."""
    path = SHARED / "eval" / "dev.jsonl"
    if not path.is_file():
        pytest.skip(f"dev questions not found at {path}")
    return path


@pytest.fixture(scope="session")
def embedder_stamp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-stamp")


@pytest.fixture(scope="session")
def embedder(embedder_stamp):
    """The bundled all-MiniLM-L6-v2, shared by every test that needs vectors or token counts.

    The weights load lazily on the first ``encode``; counting tokens needs only the tokenizer.
    """
    from ddsearch.index.embed import Embedder

    return Embedder(stamp_dir=embedder_stamp)


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data home, also set as DDSEARCH_HOME so nothing touches the user's own."""
    home = tmp_path / "home"
    monkeypatch.setenv("DDSEARCH_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_user_home(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that forgets --home must not write into the user's data directory."""
    monkeypatch.setenv("DDSEARCH_HOME", str(tmp_path_factory.getbasetemp() / "default-home"))


# ---------------------------------------------------------------- small made-up papers

SMALL_PAPERS: dict[str, tuple[str, list[list[str]]]] = {
    "lighthouse": (
        "Lighthouse: Gossip Among Keepers",
        [
            [
                "Lighthouse: Gossip Among Keepers",
                "Abstract",
                "Lighthouse is a membership service for remote coastal stations.",
                "Keepers exchange rumours about which stations are alive and which are dark.",
                "1 Introduction",
                "Coastal stations fail often because storms cut their power and their radios.",
                "A central registry cannot see a station that the storm has silenced.",
                "We therefore let every keeper gossip with a few random neighbours.",
            ],
            [
                "2 Beacon Protocol",
                "Each keeper lights a beacon every ninety seconds to show that it is alive.",
                "A neighbour that misses three beacons in a row suspects the station.",
                "Suspicion spreads by gossip until a majority of keepers agree on it.",
                "A suspected keeper may refute the rumour by lighting a brighter beacon.",
                "The brighter beacon carries an incarnation number that only grows.",
            ],
            [
                "3 Evaluation",
                "We measured detection time during the great fog of last winter.",
                "Dense fog hid most beacons, so false suspicions rose sharply.",
                "Refutation kept the false removal rate below one station per week.",
                "4 Conclusions",
                "Gossip among keepers detects dark stations quickly and cheaply.",
            ],
        ],
    ),
    "ledger": (
        "Quorum Ledger: Replicated Accounts for Tea Merchants",
        [
            [
                "Quorum Ledger: Replicated Accounts for Tea Merchants",
                "Abstract",
                "Quorum Ledger keeps the accounts of travelling tea merchants consistent.",
                "Merchants record sales in many towns while their clerks are far apart.",
                "1 Introduction",
                "A single account book cannot travel with every caravan at once.",
                "Copies of the book drift apart when caravans are delayed in the desert.",
            ],
            [
                "2 Sloppy Quorums of Clerks",
                "Every sale is written to three clerks chosen from a ring of scribes.",
                "A write succeeds once two of the three clerks have copied the entry.",
                "When a clerk is travelling, a substitute scribe holds a hinted entry for him.",
                "Hinted entries return to their owner when he comes back to the market.",
                "3 Reconciling Account Books",
                "Clerks compare their books with hash trees of the saffron and jasmine pages.",
            ],
        ],
    ),
    "orchard": (
        "Orchard: Consistent Hashing of Apple Trees",
        [
            [
                "Orchard: Consistent Hashing of Apple Trees",
                "Abstract",
                "Orchard assigns apple trees to pickers so that adding a picker moves few trees.",
                "1 Introduction",
                "Harvest crews change every morning as pickers arrive and leave.",
                "Reassigning every tree each morning wastes the first hour of daylight.",
            ],
            [
                "2 Placement",
                "Trees and pickers are hashed onto the same circle of positions.",
                "Each tree belongs to the first picker clockwise from its position.",
                "Virtual pickers smooth the load when the crew is small.",
            ],
            [
                "3 Harvest Results",
                "Apples are carried to baskets by the picker that owns their tree.",
                "Adding a tenth picker moved only one tree in ten to a new owner.",
                "The cider press received a steady flow of baskets all afternoon.",
            ],
        ],
    ),
}


def write_small_papers(folder: Path, names=None) -> dict[str, Path]:
    """Write the made-up papers (all, or those named) as PDFs into folder: {id: path}."""
    from pdfmaker import make_pdf

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for pid in names or SMALL_PAPERS:
        title, pages = SMALL_PAPERS[pid]
        out[pid] = make_pdf(folder / f"{pid}.pdf", pages, title=title)
    return out


@pytest.fixture
def small_pdfs(tmp_path: Path) -> dict[str, Path]:
    """A fresh folder holding the three made-up papers as PDFs."""
    return write_small_papers(tmp_path / "pdfs")


@pytest.fixture(scope="session")
def indexed_home(tmp_path_factory, embedder) -> Path:
    """A data home with the three made-up papers ingested. Shared: tests must not change it."""
    from ddsearch.catalog import load_catalog
    from ddsearch.config import Settings
    from ddsearch.ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("indexed")
    write_small_papers(root / "pdfs")
    home = root / "home"
    report = ingest(Settings(home=home), load_catalog(), [root / "pdfs"], embedder=embedder)
    assert report.ok and len(report.of("ingested")) == 3, report
    return home


def searcher_over(home: Path, shared_papers: Path, embedder, ids):
    """A Searcher over these shared papers ingested into ``home`` (a module fixture yields
    from it), closed when the fixture ends."""
    from ddsearch.catalog import load_catalog
    from ddsearch.config import Settings
    from ddsearch.ingest.pipeline import ingest
    from ddsearch.search.searcher import Searcher

    catalog = load_catalog()
    sources = [shared_papers / f"{pid}.pdf" for pid in ids]
    assert ingest(Settings(home=home), catalog, sources, embedder=embedder).ok
    searcher = Searcher(home, embedder=embedder, catalog=catalog)
    yield searcher
    searcher.store.close()
