"""The API's answers as typed models: they generate ``/openapi.json``, and the tests check
that what the server sends (``query --json``'s own JSON) conforms to them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CitationFields(BaseModel):
    authors: list[str]
    year: int | None
    title: str
    venue: str | None
    doi: str | None
    url: str | None


Box = tuple[float, float, float, float]


class HighlightOnPage(BaseModel):
    page: int = Field(ge=1, description="The PDF page (1-based)")
    box: Box = Field(description="The page as a viewer shows it (its crop box), PDF points")
    rects: list[Box] = Field(
        description="The quote's lines on the page: [x0, y0, x1, y1] in PDF points, y upwards"
    )


class Result(BaseModel):
    rank: int = Field(ge=1)
    paper: str = Field(description="The paper id")
    key: str = Field(description="The citation key (as in the BibTeX of /cite/ID)")
    title: str
    year: int | None
    pages: list[int] = Field(description="PDF pages the citation claims: the quote's")
    printed_pages: list[str] = Field(description="The page numbers printed on those pages")
    page_label: str | None = Field(description='What to paste: "p. 8", "pp. 252-253"')
    passage_pages: list[int] = Field(description="PDF pages of the whole passage, as context")
    section: str | None
    score: float
    scores: dict[str, float] = Field(description="Each ranker's raw and normalised evidence")
    quote: str | None = Field(description="The 1-3 sentences that answer, from the passage")
    text: str = Field(description="The whole passage")
    link: str | None = Field(description="The PDF, opened at the quote's page")
    highlight: list[HighlightOnPage] = Field(
        description="Where the quote stands on its pages ([] when its PDF is not at hand); "
        "/page/{paper}/{page}.png?mark=x0,y0,x1,y1 draws it"
    )
    citation: CitationFields


class PaperChance(BaseModel):
    id: str
    chance: float = Field(ge=0, le=1)


class QuestionReading(BaseModel):
    asks: str = Field(description="What the question asks, less the words that say which system")
    papers: list[PaperChance] = Field(description="The likeliest papers, with their chance")


class Respelled(BaseModel):
    typed: str = Field(description="A word (or a name typed apart) of the question as typed")
    read: str = Field(
        description="What it was searched as: the word one typing slip away that the passages "
        "hold, or the name it spells apart ('Map Reduce': 'MapReduce')"
    )


class SearchAnswer(BaseModel):
    query: str
    weak_match: bool = Field(description="The passages match the question only weakly")
    reading: QuestionReading | None = Field(
        description="How hybrid search read the question (null in dense or lexical mode)"
    )
    respelled: list[Respelled] = Field(
        description="Typing slips and names typed apart, and what each was searched as "
        "([] when none)"
    )
    results: list[Result]


class PaperStatus(BaseModel):
    id: str
    title: str
    year: int | None
    status: Literal["indexed", "downloaded", "not downloaded", "no open-access URL"]
    chunks: int = Field(ge=0)
    source: str | None = Field(description="The PDF the index was built from")
    cites: int | None = Field(
        description="Papers of the collection it cites (null: its reference list never read)"
    )
    cited_by: int = Field(ge=0, description="Papers of the collection citing it")


class CitingSentence(BaseModel):
    page: int | None = Field(description="The first PDF page the sentence stands on")
    pages: list[int]
    page_label: str | None = Field(description='What to cite: "p. 8", "PDF p. 3"')
    quote: str = Field(description="The citing sentence")
    link: str | None = Field(description="The citing paper's PDF, opened at the page")
    paper: str = Field(description="The citing paper's id")
    key: str = Field(description="The citing paper's citation key")


class ReferenceEntry(BaseModel):
    id: str | None = Field(
        description="/refs: the cited paper (null: no known paper); /cited-by and path's "
        "reasons: the citing paper"
    )
    label: str = Field(description='The entry\'s label as printed: "[15]", "15.", "[Lam78]"')
    reference: str = Field(description="The entry's text")
    citations: list[CitingSentence] = Field(description="The sentences citing it, in order")


class ReadingStep(BaseModel):
    id: str
    title: str
    year: int | None
    target: bool = Field(description="One of the papers the order was asked for")
    dependents: list[str] = Field(description="The papers of the order that build on it")
    reasons: list[ReferenceEntry] = Field(
        description="Its citers in the order, each with the sentences saying why it matters"
    )


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
