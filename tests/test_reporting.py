"""Where results land: under results/, whatever the file or campaign was called."""

from __future__ import annotations

from jobs.reporting import results_key


def test_results_key_keeps_a_plain_name() -> None:
    """`spring-sale.xlsx` sent as job s1 lands at results/spring-sale.s1.csv."""
    assert results_key("spring-sale", "s1") == "results/spring-sale.s1.csv"


def test_a_campaign_name_cannot_leave_the_results_folder() -> None:
    """Slashes and dot-dot in a user's campaign name become plain characters."""
    key = results_key("../../etc/passwd", "b1")
    assert key.startswith("results/") and key.count("/") == 1 and ".." not in key
