"""The demo CRM generator (DESIGN.md §2): a seeded, realistic CRM history plus its truth.

``generate(config)`` builds the four contract tables and the truth tables in memory;
``write_generated(crm, out_dir, file_format)`` writes them with ``manifest.json``. Modules:
``calendar`` (window, seasonality, shocks), ``owners`` (reps), ``leads`` (attributes,
missing values, conversion), ``deals`` (stage process), ``close_dates`` (expected close
dates and slips), ``activities`` (engagement), ``inject`` (invalid rows), ``writer``.
"""

from pipelines.demo_crm.config import GENERATOR_VERSION, GeneratorConfig
from pipelines.demo_crm.generator import GeneratedCRM, generate
from pipelines.demo_crm.summary import summarize
from pipelines.demo_crm.writer import write_generated

__all__ = [
    "GENERATOR_VERSION",
    "GeneratedCRM",
    "GeneratorConfig",
    "generate",
    "summarize",
    "write_generated",
]
