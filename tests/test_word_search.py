"""Search is word-wise: `q=linen shirt` finds "Linen Shirt, Natural" (every word, any order, as a
substring, case-insensitively), Korean included ("셔츠" is found inside "린넨셔츠"). Where the server
has pg_trgm, each word is served by the trigram index on 100,000 products; without it (the embedded
PostgreSQL) the same query scans and still answers right.

Run with `-s` to see each plan's indexes and execution time."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.catalog.queries import MAX_WORDS, ProductFilters, list_products, listing_sql, search_words
from models.errors import InvalidInput
from models.infra.db import db
from models.tables import Product, trigram_available
from tests.support import assert_error

API = "/api/v1/products"


def make(name: str, description: str = "", **extra: Any) -> Product:
    n = Product.select().count() + 1
    return Product.create(
        sku=f"W-{n}",
        name=name,
        slug=f"w-{n}",
        description=description,
        price=1000,
        stock_quantity=5,
        tags=[],
        images=[],
        **extra,
    )


def names(client: Any, q: str) -> set[str]:
    response = client.get(API, params={"q": q, "page_size": 100})
    assert response.status_code == 200, response.text
    return {p["name"] for p in response.json()["items"]}


def test_every_word_in_any_order_and_korean_inside_compounds(client: Any) -> None:
    make("Linen Shirt, Natural")
    make("Linen Trousers", "A shirt's best friend")
    make("Oxford Shirt", "Cotton, natural dye")
    make("린넨셔츠 내추럴")
    make("내추럴 린넨 셔츠")
    make("울 코트", "린넨 안감")
    make("50% Off Tee")
    assert names(client, "linen shirt") == {"Linen Shirt, Natural", "Linen Trousers"}
    assert names(client, "SHIRT   linen, natural") == {"Linen Shirt, Natural"}
    assert names(client, "shirt natural") == {"Linen Shirt, Natural", "Oxford Shirt"}
    assert names(client, "linen jacket") == set()
    assert names(client, "린넨 셔츠") == {"린넨셔츠 내추럴", "내추럴 린넨 셔츠"}
    assert names(client, "셔츠") == {"린넨셔츠 내추럴", "내추럴 린넨 셔츠"}
    assert names(client, "린넨") == {"린넨셔츠 내추럴", "내추럴 린넨 셔츠", "울 코트"}  # description too
    assert names(client, "50% tee") == {"50% Off Tee"}
    assert names(client, "5_% tee") == set()  # '_' and '%' are characters, not wildcards


def test_search_words() -> None:
    assert search_words("Linen shirt, natural LINEN") == ["Linen", "shirt", "natural"]
    assert search_words("린넨/셔츠 (내추럴)") == ["린넨", "셔츠", "내추럴"]
    assert search_words(" , ") == []
    assert search_words("linen-shirt. men's 린넨·코튼 “natural”") == [
        "linen",
        "shirt",
        "men",
        "s",
        "린넨",
        "코튼",
        "natural",
    ]
    assert search_words("50% 5_%") == ["50%", "5_%"]  # characters shoppers search for
    assert len(search_words(" ".join(f"w{n}" for n in range(20)))) == 20  # none dropped


def test_punctuation_inside_or_after_a_word_breaks_it(client: Any) -> None:
    make("Linen Shirt, Natural")
    make("Men's Linen Trousers")
    make("린넨 코튼 셔츠")
    for q in ("linen shirt.", "linen-shirt", "Linen/Shirt!", "shirt...linen"):
        assert names(client, q) == {"Linen Shirt, Natural"}, q
    assert names(client, "mens'") == set()  # "mens" is in no name
    assert names(client, "men's trousers") == {"Men's Linen Trousers"}
    assert names(client, "린넨·셔츠") == {"린넨 코튼 셔츠"}


def test_more_words_than_counted_are_refused_not_ignored(client: Any) -> None:
    make("Linen Shirt, Natural")
    eight = "linen shirt natural linen, shirt; natural"  # repeated words count once
    assert names(client, eight) == {"Linen Shirt, Natural"}
    nine = "linen shirt natural a b c d e zebra"
    assert MAX_WORDS == 8
    error = assert_error(client.get(API, params={"q": nine}), 422, "validation_error")
    assert "At most 8 different words (this search has 9)" in error["details"]["fields"]["q"], error
    with pytest.raises(InvalidInput) as refused:  # the domain refuses it too, for any other caller
        list_products(ProductFilters(q=nine), "-created_at", 1, 20, True)
    assert "q" in refused.value.details["fields"]
    q = client.get("/api/openapi.json").json()["paths"]["/api/v1/products"]["get"]["parameters"]
    (described,) = [p["description"] for p in q if p["name"] == "q"]
    assert "at most 8 different words" in described


ROWS = 100_000
INSERT = f"""
INSERT INTO products (sku, name, slug, description, price, stock_quantity, low_stock_threshold, track_inventory,
                      category, tags, images, is_published, is_featured, created_at, updated_at)
SELECT 'SKU-' || i,
       CASE WHEN i %% 2 = 0 THEN
         (ARRAY['Linen','Wool','Cotton','Silk','Denim'])[i %% 5 + 1] || ' '
           || (ARRAY['Shirt','Coat','Scarf','Bag','Cap','Dress','Sock'])[i %% 7 + 1] || ', '
           || (ARRAY['Natural','Navy','Black'])[i %% 3 + 1] || ' ' || i
       ELSE
         (ARRAY['린넨','울','코튼','실크','데님'])[i %% 5 + 1]
           || CASE WHEN i %% 4 = 1 THEN '' ELSE ' ' END
           || (ARRAY['셔츠','코트','스카프','가방','모자','원피스','양말'])[i %% 7 + 1] || ' '
           || (ARRAY['내추럴','네이비','블랙'])[i %% 3 + 1] || ' ' || i
       END,
       'product-' || i, (ARRAY['soft','warm','light','classic'])[i %% 4 + 1] || ' fabric',
       (i * 7919 %% 200000) + 1000, i %% 200, 5, TRUE, 'cat-' || (i %% 20), '[]'::jsonb, '[]'::jsonb,
       i %% 10 <> 3, i %% 25 = 0, timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second', now()
FROM generate_series(1, {ROWS}) AS i
"""
# A trigram index can only narrow by words of three characters or more: "셔츠 린넨" (two syllables
# each) is answered by scanning, on any server; see README "Search".
SEARCHES = [
    "linen shirt",
    "natural SHIRT linen",
    "린넨셔츠",
    "네이비 린넨셔츠",
    "linen trousers",
    "navy 4242",
    "셔츠 린넨",
]


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node] + [n for child in node.get("Plans", []) for n in _walk(child)]


def _expected_total(q: str) -> int:
    conditions = " AND ".join(["strpos(lower(name || ' ' || description), lower(%s)) > 0"] * len(search_words(q)))
    (count,) = db.obj.execute_sql(
        f"SELECT count(*) FROM products WHERE is_published AND {conditions}", search_words(q)
    ).fetchone()
    return int(count)


def test_word_search_uses_the_trigram_index_on_100k_products() -> None:
    if not trigram_available(db.obj):
        pytest.skip(
            "this PostgreSQL has no pg_trgm (the embedded pgserver lacks contrib): word search works by "
            "a scan here; run with TEST_DATABASE_URL on a full PostgreSQL to check the index"
        )
    db.obj.execute_sql(INSERT)
    db.obj.execute_sql("VACUUM ANALYZE products")
    failures, report = [], []
    for q in SEARCHES:
        page = list_products(ProductFilters(q=q), "-created_at", 1, 20, False)
        assert page.total == _expected_total(q), q
        sql, params = listing_sql(ProductFilters(q=q), "-created_at", 1, 20, False)
        (raw,) = db.obj.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
        plan = raw if isinstance(raw, list) else json.loads(raw)
        nodes = _walk(plan[0]["Plan"])
        used = sorted({n["Index Name"] for n in nodes if "Index Name" in n})
        seq_scans = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "products"]
        millis = plan[0]["Execution Time"]
        report.append(f"{q!r:24} {page.total:6} matches {millis:7.2f} ms  {', '.join(used)}")
        if all(len(word) < 3 for word in search_words(q)):
            continue  # nothing a trigram index can narrow by
        if seq_scans or "products_search_trgm" not in used:
            failures.append(f"{q}: seq scans={len(seq_scans)}, indexes={used}\n" + json.dumps(plan, indent=1))
    print("\n" + "\n".join(report))
    assert not failures, "\n\n".join(failures)
