"""The inventory: a service's effective RTO along its dependency chain, and the catalogue search."""

from __future__ import annotations

from itscm.filters import Filters
from itscm.inventory import service_card, service_catalogue
from itscm.store import Store
from tests import backends
from tests.conftest import SMALL_ORG_AS_OF


def by_name(store: Store, search: str = ""):
    return service_catalogue(store, Filters(as_of=SMALL_ORG_AS_OF), search=search).set_index("service")


def test_a_slower_dependency_sets_the_effective_rto(small_org_path):
    """Card Authorisation (RTO 30 min) depends on Core Ledger (60 min): it cannot recover in 30."""
    with Store(small_org_path, read_only=True) as store:
        auth = by_name(store).loc["Card Authorisation"]
        assert (auth["effective_rto_minutes"], auth["bottleneck"], auth["rto_misaligned"]) == (60, "Core Ledger", True)


def test_a_service_without_slower_dependencies_keeps_its_own_rto(small_org_path):
    with Store(small_org_path, read_only=True) as store:
        catalogue = by_name(store)
        for name in ("Core Ledger", "Customer Portal", "Expense Claims"):
            row = catalogue.loc[name]
            assert row["effective_rto_minutes"] == row["rto_minutes"] and not row["rto_misaligned"], name
            assert row["bottleneck"] is None or row["bottleneck"] != row["bottleneck"], name   # None or NA
        card = service_card(store, "svc1")["service"].iloc[0]
        assert card["effective_rto_minutes"] == 60


def test_the_search_finds_a_service_by_alias_owner_or_unit_in_any_case(small_org_path):
    with Store(small_org_path, read_only=True) as store:
        assert list(by_name(store, "cbl-prod").index) == ["Core Ledger"]
        assert set(by_name(store, "CARDS").index) == {"Card Authorisation"}
        assert by_name(store, "no such thing").empty


def test_the_card_counts_a_slower_supplier_but_not_a_dependency_with_a_working_alternative():
    """The card reads the failure graph (docs/DESIGN.md §14.1): a supplier's contracted recovery
    time is on the chain; a dependency with a working alternative does not hold recovery back."""
    from tests.builders import OrgBuilder
    from tests.resilience_org import depends, relies_on, supplier

    store = backends.new_store()
    build = OrgBuilder(store)
    app = build.service(None, name="App", rto_minutes=60)
    slow = build.service(None, name="Slow backend", rto_minutes=600)
    depends(store, app, slow, alternative=True)
    relies_on(store, app, supplier(store, "sup-x", "Hosting Co", 240))
    card = service_card(store, app)["service"].iloc[0]
    assert (card["effective_rto_minutes"], card["bottleneck"], card["rto_misaligned"]) == (240, "Hosting Co", True)
    store.close()
