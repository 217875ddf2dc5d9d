"""A stage's `Section` (pipelines.stats.section) as Dagster metadata: facts as plain values, tables as markdown
tables, figures as markdown images with the PNG inlined (the UI's markdown renderer allows `data:` images)."""

from dagster import MetadataValue

from pipelines.stats.section import Section, md_image, md_table


def markdown_metadata(section: Section) -> dict:
    """The section's tables and figures, each under its own key, as markdown metadata."""
    return {
        **{key: MetadataValue.md(md_table(table)) for key, table in section.tables.items()},
        **{key: MetadataValue.md(md_image(figure)) for key, figure in section.figures.items()},
    }


def section_metadata(section: Section) -> dict:
    """The section's facts, tables and figures as metadata."""
    return {**section.facts, **markdown_metadata(section)}
