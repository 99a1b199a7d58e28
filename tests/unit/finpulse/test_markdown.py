from finpulse.markdown import table
from tests.markdown import tables


def test_table_reads_back_cell_for_cell_even_with_pipes_in_cells() -> None:
    rows = [["Fed | Central Banks", "0.916"], ["Gold | Metals | Materials", "1.000"], ["Earnings", ""]]
    text = "\n".join(table(("class", "precision"), rows))
    assert tables(text) == [[["class", "precision"], *rows]]


def test_table_without_rows_is_a_header_and_its_rule() -> None:
    assert table(("a", "b"), []) == ["| a | b |", "|---|---|"]
