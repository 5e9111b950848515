"""GET /v1/invoices/search and /v1/customers/search with Stripe's search query language,
driven by the stripe SDK: each field and operator, negation, AND and OR, metadata,
paging with next_page, and bad queries refused naming `query`."""

from __future__ import annotations

import random

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain import search_query
from service.store import search
from tests import factories
from tests.conftest import TEST_KEY


@pytest.fixture
def client(server: str) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


def _tag() -> str:
    """A value no other test's objects carry."""
    return f"t{random.randrange(10**12)}"


def _customers(client: stripe.StripeClient, query: str) -> list[str]:
    return [c.id for c in client.v1.customers.search(params={"query": query}).auto_paging_iter()]


def _invoices(client: stripe.StripeClient, query: str) -> list[str]:
    return [i.id for i in client.v1.invoices.search(params={"query": query}).auto_paging_iter()]


# --- invoices ---------------------------------------------------------------------------


def test_invoices_found_by_metadata_and_number(client, api):
    # given a customer's invoices, one tagged with an order id and finalized
    tag = _tag()
    customer = factories.customer(api)
    tagged = factories.draft_invoice(api, 1200, cus=customer)
    api.post(f"/v1/invoices/{tagged['id']}", {"metadata[order]": tag, "metadata[kind]": "Shop"})
    tagged = factories.finalize(api, tagged["id"])
    other = factories.open_invoice(api, 800, cus=customer)
    api.post(f"/v1/invoices/{other['id']}", {"metadata[order]": tag + "x"})

    # then metadata (case-insensitive value, as Stripe's token fields) and the number
    # find exactly it
    result = client.v1.invoices.search(params={"query": f"metadata['order']:'{tag}'"})
    assert result.object == "search_result"
    assert [i.id for i in result.data] == [tagged["id"]]
    assert result.has_more is False and result.next_page is None
    assert result.url == "/v1/invoices/search"
    assert _invoices(client, f'metadata["kind"]:"shop" AND customer:"{customer["id"]}"') == [
        tagged["id"]
    ]
    assert _invoices(client, f'number:"{tagged["number"]}"') == [tagged["id"]]
    # a number is matched whole, not as a prefix of a longer one
    assert _invoices(client, f'number:"{tagged["number"][:-1]}"') == []


def test_invoices_by_status_total_currency_created_and_customer(client, api, db):
    customer = factories.customer(api)
    cid = customer["id"]
    small = factories.open_invoice(api, 300, cus=customer)
    large = factories.open_invoice(api, 5000, cus=customer)
    draft = factories.draft_invoice(api, 700, cus=customer)
    db.execute("UPDATE invoices SET created = 1000000000 WHERE id = %s", (small["id"],))

    def found(query: str) -> list[str]:
        return _invoices(client, f'customer:"{cid}" AND {query}')

    assert found('status:"open"') == [large["id"], small["id"]]
    assert found('status:"DRAFT"') == [draft["id"]]
    assert found("total>1000") == [large["id"]]
    assert found("total<=700") == [draft["id"], small["id"]]
    assert found('total>="5000"') == [large["id"]]
    assert found("total:300") == [small["id"]]
    assert found('currency:"USD"') == [draft["id"], large["id"], small["id"]]
    assert found("created<1000000001") == [small["id"]]
    assert found("created>1000000000") == [draft["id"], large["id"]]
    assert found('-status:"open"') == [draft["id"]]
    assert found("number:null") == [draft["id"]]
    assert found("-number:null") == [large["id"], small["id"]]
    # ids are compared exactly
    assert _invoices(client, f'customer:"{cid.upper()}"') == []


def test_or_matches_either_clause(client, api):
    first, second, third = (factories.open_invoice(api, 100 + i) for i in range(3))
    query = " OR ".join(f'customer:"{i["customer"]}"' for i in (first, third))
    assert _invoices(client, query) == [third["id"], first["id"]]
    # `or` in any case, and clauses side by side are an AND
    lower = f'customer:"{first["customer"]}" or customer:"{second["customer"]}"'
    assert _invoices(client, lower) == [second["id"], first["id"]]
    both = f'customer:"{first["customer"]}" total:{first["total"]}'
    assert _invoices(client, both) == [first["id"]]
    assert _invoices(client, f'customer:"{first["customer"]}" total:1') == []


# --- customers --------------------------------------------------------------------------


def test_customers_by_email_name_phone_and_metadata(client, api):
    tag = _tag()
    amy = factories.customer(
        api,
        email=f"amy.{tag}@rocketrides.io",
        name=f"Amy {tag} Rider",
        phone="+15550100",
        **{"metadata[team]": tag},
    )
    bob = factories.customer(
        api, email=f"bob.{tag}@example.com", name=f"Bob {tag}", **{"metadata[team]": tag}
    )
    carol = factories.customer(api, email=f"carol.{tag}@example.com", name=f"Carol{tag}")

    # exact email, case-insensitive
    assert _customers(client, f'email:"AMY.{tag}@rocketrides.io"') == [amy["id"]]
    # substring of three characters or more
    assert _customers(client, f'email~"{tag}@example"') == [carol["id"], bob["id"]]
    assert _customers(client, f'email~"{tag}" AND email~"rocket"') == [amy["id"]]
    # a name matches the words of the query in order, not a piece of a word
    assert _customers(client, f'name:"{tag} rider"') == [amy["id"]]
    assert _customers(client, f'name:"{tag}"') == [bob["id"], amy["id"]]
    assert _customers(client, f'name:"rider {tag}"') == []
    assert _customers(client, f'name~"carol{tag[:4]}"') == [carol["id"]]
    assert _customers(client, f'phone:"+15550100" AND name~"{tag}"') == [amy["id"]]
    # metadata, its absence, and negation
    assert _customers(client, f"metadata['team']:'{tag}'") == [bob["id"], amy["id"]]
    team = f'metadata["team"]:"{tag}"'
    assert _customers(client, f'{team} AND -email~"rocketrides"') == [bob["id"]]
    assert _customers(client, f'name~"{tag}" AND metadata["team"]:null') == [carol["id"]]
    assert _customers(client, f'name~"{tag}" AND -metadata["team"]:null') == [
        bob["id"],
        amy["id"],
    ]


def test_customers_by_created(client, api, db):
    tag = _tag()
    customers = [factories.customer(api, name=f"{tag}")["id"] for _ in range(3)]
    for offset, customer in enumerate(customers):
        db.execute(
            "UPDATE customers SET created = %s WHERE id = %s", (1_000_000_000 + offset, customer)
        )
    name = f'name:"{tag}"'
    assert _customers(client, f"{name} AND created>1000000000") == customers[:0:-1]
    assert _customers(client, f"{name} AND created>=1000000001 AND created<1000000002") == [
        customers[1]
    ]
    assert _customers(client, f"{name} AND created:1000000000") == [customers[0]]


def test_negation_keeps_rows_whose_field_is_empty(client, api):
    tag = _tag()
    named = factories.customer(api, name=f"{tag} Smith", **{"metadata[t]": tag})
    unnamed = factories.customer(api, **{"metadata[t]": tag})
    assert _customers(client, f'metadata["t"]:"{tag}" AND -name:"smith"') == [unnamed["id"]]
    assert _customers(client, f'metadata["t"]:"{tag}" AND name:null') == [unnamed["id"]]
    assert named["id"] in _customers(client, f'metadata["t"]:"{tag}" AND -name:null')


def test_search_sees_only_the_callers_mode(client, api, live_api):
    tag = _tag()
    test_customer = factories.customer(api, name=tag)
    factories.customer(live_api, name=tag)
    assert _customers(client, f'name:"{tag}"') == [test_customer["id"]]


def test_quotes_escape_with_a_backslash(client, api):
    tag = _tag()
    quoted = factories.customer(api, name=f'{tag} "The Sky" it\'s')
    assert _customers(client, f'name:"{tag} \\"the sky\\""') == [quoted["id"]]
    assert _customers(client, f"name~'sky\" it\\'s' AND name~'{tag}'") == [quoted["id"]]


def test_like_wildcards_in_a_substring_are_literal(client, api):
    tag = _tag()
    percent = factories.customer(api, name=f"{tag} 100% sure")
    factories.customer(api, name=f"{tag} 1000 sure")
    assert _customers(client, f'name~"{tag}" AND name~"00%"') == [percent["id"]]
    assert _customers(client, f'name~"{tag}" AND name~"1_0"') == []


# --- paging -----------------------------------------------------------------------------


def test_paging_with_next_page(client, api):
    tag = _tag()
    customers = [factories.customer(api, **{"metadata[batch]": tag})["id"] for _ in range(5)]
    query = f"metadata['batch']:'{tag}'"

    first = client.v1.customers.search(params={"query": query, "limit": 2})
    assert [c.id for c in first.data] == customers[:2:-1]
    assert first.has_more is True and isinstance(first.next_page, str)

    # the SDK follows next_page to the end: every match once, newest first
    walked = [c.id for c in first.auto_paging_iter()]
    assert walked == list(reversed(customers))

    second = client.v1.customers.search(
        params={"query": query, "limit": 2, "page": first.next_page}
    )
    assert [c.id for c in second.data] == [customers[2], customers[1]]
    last = client.v1.customers.search(params={"query": query, "limit": 2, "page": second.next_page})
    assert [c.id for c in last.data] == [customers[0]]
    assert last.has_more is False and last.next_page is None


def test_a_page_of_another_query_is_refused(api):
    tag = _tag()
    for _ in range(2):
        factories.customer(api, **{"metadata[batch]": tag})
    first = api.get(
        "/v1/customers/search", {"query": f"metadata['batch']:'{tag}'", "limit": 1}
    ).json
    for page in (first["next_page"], "not-a-page", ""):
        response = api.get(
            "/v1/customers/search", {"query": f"metadata['batch']:'{tag}x'", "page": page}
        )
        assert response.status_code == 400, response.json
        assert response.json["error"]["param"] == "page"


def test_expand_reaches_into_the_results(client, api):
    tag = _tag()
    invoice = factories.draft_invoice(api, 400)
    api.post(f"/v1/invoices/{invoice['id']}", {"metadata[x]": tag})
    result = client.v1.invoices.search(
        params={"query": f"metadata['x']:'{tag}'", "expand": ["data.customer"]}
    )
    assert result.data[0].customer.id == invoice["customer"]


# --- bad queries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "says"),
    [
        ("/v1/customers/search", "", "empty"),
        ("/v1/customers/search", "   ", "empty"),
        ("/v1/customers/search", 'email:"a@b.c" AND name:"x" OR name:"y"', "AND and OR"),
        ("/v1/customers/search", "total>5", "not a field"),
        ("/v1/customers/search", 'status:"open"', "not a field"),
        ("/v1/invoices/search", 'receipt_number:"R-1"', "not a field"),
        ("/v1/invoices/search", 'number>"A"', "operator >"),
        ("/v1/invoices/search", 'currency~"usd"', "operator ~"),
        ("/v1/invoices/search", "status:open", "quoted"),
        ("/v1/invoices/search", 'total>"ten"', "integer"),
        ("/v1/invoices/search", "total>10.5", "space"),
        ("/v1/customers/search", 'email~"am"', "at least 3"),
        ("/v1/customers/search", 'email:"amy', "not closed"),
        ("/v1/customers/search", 'email="amy"', "operator"),
        ("/v1/customers/search", 'metadata:"x"', "metadata['key']"),
        ("/v1/customers/search", "metadata['k':'v'", "metadata['key']"),
        ("/v1/invoices/search", "total>null", "null"),
        ("/v1/customers/search", 'email:""', "empty"),
        ("/v1/customers/search", " ".join(["created>1"] * 11), "more than 10"),
        ("/v1/customers/search", 'email:"a"name:"b"', "space"),
        ("/v1/invoices/search", '(status:"open")', "field name"),
    ],
)
def test_a_bad_query_is_refused_naming_it(api, db, path, query, says):
    events_before = db.execute("SELECT count(*) AS n FROM events").fetchone()["n"]

    response = api.get(path, {"query": query})

    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "query"
    assert says in error["message"], error["message"]
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == events_before


def test_query_is_required_and_other_parameters_refused(api):
    missing = api.get("/v1/invoices/search")
    assert missing.status_code == 400
    assert missing.json["error"]["param"] == "query"
    assert missing.json["error"]["code"] == "parameter_missing"
    unknown = api.get("/v1/invoices/search", {"query": "total>1", "starting_after": "in_1"})
    assert unknown.status_code == 400
    assert unknown.json["error"]["param"] == "starting_after"
    too_many = api.get("/v1/invoices/search", {"query": "total>1", "limit": 101})
    assert too_many.json["error"]["param"] == "limit"


# --- the parser, alone ------------------------------------------------------------------


def test_the_parser_reads_each_part_of_a_clause():
    fields = search.FIELDS["invoices"]
    query = search_query.parse(
        '  -metadata["order id"]:\'A\\\'1\'   total>=-5 created:"7" customer:42  ', fields
    )
    assert query.connective == "AND"
    assert query.clauses == (
        search_query.Clause("metadata", "metadata", ":", "A'1", True, "order id"),
        search_query.Clause("total", "numeric", ">=", -5),
        search_query.Clause("created", "numeric", ":", 7),
        search_query.Clause("customer", "id", ":", "42"),
    )


def test_the_parser_reads_or_and_null():
    query = search_query.parse('number:null oR status:"paid"', search.FIELDS["invoices"])
    assert query.connective == "OR"
    assert [(c.field, c.value) for c in query.clauses] == [("number", None), ("status", "paid")]


# Pieces of the grammar and of what breaks SQL, regular expressions and LIKE.
_PIECES = [
    "email", "name", "phone", "created", "total", "status", "number", "customer",
    "metadata", "metadata['k']", 'metadata["k"]', ":", "~", ">", "<", ">=", "<=", "-",
    " ", " AND ", " OR ", " and ", "null", "NULL", '"', "'", "\\", "[", "]", "(", ")",
    "%", "_", "*", ".", "$", "^", "|", "+", "?", "{", "}", "0", "42", "-7", "é", "\u2028",
    "99999999999999999999", "amy", "x y", ";", "--",
]  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=12))
def test_any_query_is_answered_or_refused_naming_query(api, pieces):
    query = "".join(pieces)
    for path in ("/v1/customers/search", "/v1/invoices/search"):
        response = api.get(path, {"query": query})
        assert response.status_code in (200, 400), (query, response.json)
        if response.status_code == 400:
            assert response.json["error"]["param"] == "query", (query, response.json)
        else:
            assert response.json["object"] == "search_result"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_CLAUSES = st.tuples(
    st.sampled_from(["", "-"]),
    st.sampled_from(["email", "name", "phone", "metadata['k']", "created"]),
    st.sampled_from([":", "~", ">", "<=", ":"]),
    st.one_of(st.text(max_size=12).map(_quoted), st.integers().map(str), st.just("null")),
).map("".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(clauses=st.lists(_CLAUSES, min_size=1, max_size=4), joiner=st.sampled_from([" ", " OR "]))
def test_any_well_formed_query_is_answered(api, clauses, joiner):
    query = joiner.join(clauses)
    response = api.get("/v1/customers/search", {"query": query})
    assert response.status_code in (200, 400), (query, response.json)
    if response.status_code == 400:
        # refused only for what the language forbids: an operator the field does not
        # take, a short substring, an empty value, a number out of range, a NUL
        assert response.json["error"]["param"] == "query", (query, response.json)
