"""A small made-up canon that cites itself, as PDFs and a catalog: gamma builds on alpha and
beta, beta on alpha; delta has no reference list; omega is in the catalog, not the collection.

    alpha (2008) <- beta (2011) <- gamma (2014) -> omega (catalog only)
          ^-------------------------'
"""

from __future__ import annotations

from pathlib import Path

from pdfmaker import make_pdf

PAPERS = {
    "alpha": ("Alpha: Quorum Leases for Replicated Logs", ["Ann Arbor", "Ben Brook"], 2008),
    "beta": ("Beta: Gossip Membership Among Lighthouse Keepers", ["Carl Cole"], 2011),
    "gamma": ("Gamma: Sharded Ledgers over Quorum Leases", ["Dana Dale", "Eve Eden"], 2014),
    "delta": ("Delta: A Field Guide to Harbour Cranes", ["Finn Ford"], 2016),
    "omega": ("Omega: Failure Detectors for Offshore Beacons", ["Gil Grant"], 2005),
}
INGESTED = ("alpha", "beta", "gamma", "delta")

BODIES = {
    "alpha": [
        [
            "Alpha: Quorum Leases for Replicated Logs",
            "1 Introduction",
            "Replicated logs keep the copies of a service identical across many servers.",
            "Earlier work on transactions by Gray [1] made recovery from crashes routine.",
            "Leases let a leader serve reads without asking a quorum every single time.",
            "2 Design",
            "A quorum grants the lease and every replica remembers its expiry.",
        ],
        [
            "References",
            "[1] J. Gray. Notes on data base operating systems. In Operating Systems, An",
            "Advanced Course, Springer, 1978, pp. 393-481.",
        ],
    ],
    "beta": [
        [
            "Beta: Gossip Membership Among Lighthouse Keepers",
            "1 Introduction",
            "Keepers gossip about which stations are alive and which went dark in a storm.",
            "We keep the membership list in a replicated log with quorum leases [1].",
            "Unlike the crash recovery of Gray [2], a keeper may return after many weeks.",
            "2 Protocol",
            "Each keeper lights a beacon and neighbours watch for it at night.",
        ],
        [
            "References",
            "[1] A. Arbor and B. Brook. Alpha: Quorum leases for replicated logs. In Proc. of",
            "the Symposium on Made-Up Systems, 2008.",
            "[2] J. Gray. Notes on data base operating systems. Springer, 1978.",
        ],
    ],
    "gamma": [
        [
            "Gamma: Sharded Ledgers over Quorum Leases",
            "1 Introduction",
            "Merchants keep their ledgers in shards spread over many towns at once.",
            "Each shard is a replicated log whose leader holds a quorum lease [2].",
            "Shard membership spreads by the gossip of Beta [1], which tolerates long absences.",
            "A failed leader is noticed by the detectors of Omega [3] within seconds.",
        ],
        [
            "2 Evaluation",
            "Leases [2] cut the latency of reads by half in our measurements of the ledger.",
            "References",
            "[1] C. Cole. Beta: Gossip membership among lighthouse keepers. In Proc. of the",
            "Workshop on Made-Up Systems, 2011.",
            "[2] A. Arbor and B. Brook. Alpha: Quorum leases for replicated logs. In Proc. of",
            "the Symposium on Made-Up Systems, 2008.",
            "[3] G. Grant. Omega: Failure detectors for offshore beacons. Made-Up Press, 2005.",
        ],
    ],
    "delta": [
        [
            "Delta: A Field Guide to Harbour Cranes",
            "1 Cranes",
            "Harbour cranes lift containers from ships onto the waiting trains of the port.",
            "A crane driver sits high above the quay and watches the wind all day long.",
            "2 Weather",
            "Strong winds stop the cranes, and the ships wait at anchor outside.",
        ],
    ],
}


def catalog_toml() -> str:
    out = []
    for pid, (title, authors, year) in PAPERS.items():
        names = ", ".join(f'"{a}"' for a in authors)
        out += [
            "[[paper]]",
            f'id = "{pid}"',
            f'title = "{title}"',
            f"authors = [{names}]",
            f"year = {year}",
            'venue = "Made-Up Systems"',
            'kind = "inproceedings"',
            "",
        ]
    return "\n".join(out)


def write_web(folder: Path, names=INGESTED) -> tuple[Path, Path]:
    """(folder of the PDFs named, catalog file) under ``folder``."""
    pdfs = folder / "pdfs"
    pdfs.mkdir(parents=True, exist_ok=True)
    for pid in names:
        make_pdf(pdfs / f"{pid}.pdf", BODIES[pid], title=PAPERS[pid][0])
    catalog = folder / "papers.toml"
    catalog.write_text(catalog_toml(), encoding="utf-8")
    return pdfs, catalog
