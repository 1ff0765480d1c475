"""The catalog: the one source of truth for regions, sides, metrics and tools.

Validation (what a rating may name, the range of a value) and summaries (direction of
improvement, responder thresholds) both read from here.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, WithJsonSchema

from models.base import ResponseModel


@dataclass(frozen=True)
class Region:
    slug: str
    name: str


@dataclass(frozen=True)
class Metric:
    slug: str
    name: str
    unit: str
    min: float
    max: float
    better: Literal["lower", "higher"]
    mcid_abs: float
    mcid_pct: float | None

    @property
    def direction(self) -> int:
        """+1 when a higher value is better, -1 when lower is better."""
        return 1 if self.better == "higher" else -1


REGIONS: tuple[Region, ...] = (
    Region("adductors", "Adductors (inner thigh)"),
    Region("hamstrings", "Hamstrings"),
    Region("quadriceps", "Quadriceps"),
    Region("it_band", "IT band"),
    Region("tfl", "Tensor fasciae latae"),
    Region("glutes", "Glutes"),
    Region("piriformis", "Piriformis"),
    Region("hip_flexors", "Hip flexors"),
    Region("calves", "Calves"),
    Region("shins", "Shins"),
    Region("plantar_fascia", "Plantar fascia"),
    Region("lower_back", "Lower back"),
    Region("thoracic_spine", "Thoracic spine"),
    Region("lats", "Lats"),
    Region("pecs", "Pecs"),
    Region("upper_traps", "Upper traps"),
    Region("neck", "Neck"),
)

SIDES: tuple[str, ...] = ("left", "right", "both")

METRICS: tuple[Metric, ...] = (
    Metric("pain", "Pain", "0-10 numeric rating scale", 0, 10, "lower", 2, 30),
    Metric("stiffness", "Stiffness", "0-10", 0, 10, "lower", 2, 30),
    Metric("mobility", "Mobility", "0-10 self-rated", 0, 10, "higher", 2, None),
    Metric("rom", "Range of motion", "degrees", 0, 180, "higher", 5, None),
)

TOOLS: tuple[str, ...] = (
    "foam_roller",
    "ball",
    "peanut_ball",
    "stick",
    "percussion",
    "hands",
    "other",
)

REGION_SLUGS = frozenset(region.slug for region in REGIONS)
METRICS_BY_SLUG: dict[str, Metric] = {metric.slug: metric for metric in METRICS}

RegionSlug = Literal[
    "adductors",
    "hamstrings",
    "quadriceps",
    "it_band",
    "tfl",
    "glutes",
    "piriformis",
    "hip_flexors",
    "calves",
    "shins",
    "plantar_fascia",
    "lower_back",
    "thoracic_spine",
    "lats",
    "pecs",
    "upper_traps",
    "neck",
]
SideSlug = Literal["left", "right", "both"]
MetricSlug = Literal["pain", "stiffness", "mobility", "rom"]
ToolSlug = Literal["foam_roller", "ball", "peanut_ball", "stick", "percussion", "hands", "other"]


def _plain_number(value: float) -> int | float:
    """6.0 as 6, as the catalog's numbers have always been written."""
    return int(value) if float(value).is_integer() else value


# Written as a plain JSON number (an integer where it is one), published as `number`.
CatalogNumber = Annotated[
    float,
    PlainSerializer(_plain_number, return_type=int | float),
    WithJsonSchema({"type": "number"}),
]


class CatalogRegion(ResponseModel):
    slug: RegionSlug
    name: str


class CatalogMetric(ResponseModel):
    slug: MetricSlug
    name: str
    unit: str
    min: CatalogNumber = Field(description="The lowest value a rating may have.")
    max: CatalogNumber = Field(description="The highest value a rating may have.")
    better: Literal["lower", "higher"] = Field(description="Which way is an improvement.")
    mcid_abs: CatalogNumber = Field(
        description="Minimal clinically important difference, in the metric's unit."
    )
    mcid_pct: CatalogNumber | None = Field(
        description="Minimal clinically important difference as a percentage of `before` "
        "(e.g. 30), or null when the metric has none."
    )


class Catalog(ResponseModel):
    """The body of GET /v1/catalog."""

    regions: list[CatalogRegion]
    sides: list[SideSlug]
    metrics: list[CatalogMetric]
    tools: list[ToolSlug]


def catalog_document() -> Catalog:
    """The body of GET /v1/catalog, from the tuples above."""
    return Catalog(
        regions=[CatalogRegion(slug=region.slug, name=region.name) for region in REGIONS],
        sides=list(SIDES),
        metrics=[
            CatalogMetric(
                slug=metric.slug,
                name=metric.name,
                unit=metric.unit,
                min=metric.min,
                max=metric.max,
                better=metric.better,
                mcid_abs=metric.mcid_abs,
                mcid_pct=metric.mcid_pct,
            )
            for metric in METRICS
        ],
        tools=list(TOOLS),
    )
