"""The filter's parameters: the business units a unit takes in, read from the store's unit tree."""

import datetime as dt

import pytest

from itscm.filters import Filters, unit_ids_under, units_under
from tests.builders import OrgBuilder

AS_OF = dt.date(2026, 6, 30)


@pytest.mark.no_store
def test_a_unit_takes_in_every_unit_below_it_and_a_loop_in_the_tree_ends():
    tree = [("bu1", "Group", None), ("bu2", "Retail", "bu1"), ("bu3", "Cards", "bu2"), ("bu4", "Markets", None),
            ("bu5", "Loop A", "bu6"), ("bu6", "Loop B", "bu5")]
    assert units_under(tree, ("Group",)) == ["bu1", "bu2", "bu3"]
    assert units_under(tree, ("Retail",)) == ["bu2", "bu3"]
    assert units_under(tree, ("Cards", "Markets")) == ["bu3", "bu4"]
    assert units_under(tree, ("Loop A",)) == ["bu5", "bu6"]
    assert units_under(tree, ("Nowhere",)) == []
    assert units_under(tree, ()) == []


def test_period_and_snapshot_parameters_name_the_same_units():
    org = OrgBuilder()
    payments = org.unit("Payments")
    retail = org.unit("Retail", parent=payments)
    cards = org.unit("Cards", parent=retail)
    org.unit("Markets")
    assert unit_ids_under(org.store, ("Payments",)) == sorted([payments, retail, cards])
    for units in [(), ("Retail",), ("Cards", "Markets"), ("Nowhere",)]:
        filters = Filters(as_of=AS_OF, units=units)
        scope = filters.scope_params(org.store)
        period = filters.query_params(org.store)
        assert {key: period[key] for key in scope} == scope
        assert scope["unit_ids"] == unit_ids_under(org.store, units)
    assert Filters(as_of=AS_OF, units=("Retail",)).query_params(org.store)["unit_ids"] == sorted([retail, cards])
