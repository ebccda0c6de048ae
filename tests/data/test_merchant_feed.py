"""Google Merchant Center feeds as catalogs (data/merchant_feed.py): the tab-separated file and the RSS/Atom XML
feed a shop keeps for Google Shopping, mapped onto the product's fields, the rest kept for display."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from search_rerank.core.errors import DataError
from search_rerank.data.loaders import iter_catalog
from search_rerank.data.merchant_feed import iter_xml_records, merchant_fields

TSV = (
    "id\ttitle\tdescription\tlink\timage_link\tavailability\tprice\tbrand\tgtin\tproduct_type\tcolor\tmaterial\n"
    "sofa-1\tCorner sofa\tA roomy corner sofa\thttps://shop.example/sofa-1\thttps://shop.example/sofa-1.jpg\t"
    "in_stock\t1,299.00 USD\tAcme\t00012345678905\tHome > Furniture > Sofas\tGrey/Blue\tLinen\n"
)
RSS = """<?xml version="1.0"?>
<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0">
  <channel>
    <title>Shop</title>
    <item>
      <g:id>lamp-7</g:id>
      <title>Brass floor lamp</title>
      <link>https://shop.example/lamp-7</link>
      <g:price>89.00 EUR</g:price>
      <g:google_product_category>Home &amp; Garden &gt; Lighting &gt; Lamps</g:google_product_category>
      <g:additional_image_link>https://shop.example/lamp-7b.jpg</g:additional_image_link>
      <g:additional_image_link>https://shop.example/lamp-7c.jpg</g:additional_image_link>
      <g:shipping>
        <g:country>DE</g:country>
        <g:price>4.95 EUR</g:price>
      </g:shipping>
    </item>
  </channel>
</rss>
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_tab_separated_feed_is_read_as_products(tmp_path):
    [sofa] = iter_catalog(write(tmp_path / "products.txt", TSV))
    assert (sofa.id, sofa.title, sofa.brand, sofa.price) == ("sofa-1", "Corner sofa", "Acme", 1299.0)
    assert sofa.category == ("Home", "Furniture", "Sofas")
    assert sofa.attributes == {"color": ("Grey", "Blue"), "material": ("Linen",)}
    assert sofa.extra["image_link"] == "https://shop.example/sofa-1.jpg"
    assert sofa.extra["availability"] == "in_stock" and sofa.extra["gtin"] == "00012345678905"


def test_an_rss_feed_is_read_as_products_with_repeated_and_nested_attributes(tmp_path):
    [lamp] = iter_catalog(write(tmp_path / "feed.xml", RSS))
    assert (lamp.id, lamp.title, lamp.price) == ("lamp-7", "Brass floor lamp", 89.0)
    assert lamp.category == ("Home & Garden", "Lighting", "Lamps")
    assert lamp.extra["additional_image_link"] == [
        "https://shop.example/lamp-7b.jpg",
        "https://shop.example/lamp-7c.jpg",
    ]
    assert lamp.extra["shipping"] == {"country": "DE", "price": "4.95 EUR"}
    assert lamp.extra["link"] == "https://shop.example/lamp-7"


def test_an_atom_feed_is_read_as_an_rss_one(tmp_path):
    atom = RSS.replace("<rss", "<feed").replace("</rss>", "</feed>").replace("item>", "entry>")
    [lamp] = iter_catalog(write(tmp_path / "feed.xml", atom))
    assert (lamp.id, lamp.price) == ("lamp-7", 89.0)


@pytest.mark.parametrize(
    ("price", "number"),
    [
        *[("15.00 USD", 15.0), ("1,299.00 USD", 1299.0), ("1.299,00 EUR", 1299.0), ("15,00 EUR", 15.0), ("15", 15.0)],
        *[("1.299 EUR", 1299.0), ("1.299 JPY", 1299.0), ("1.299 KWD", 1.299), ("12.50 EUR", 12.5)],
    ],
)
def test_a_feeds_price_is_the_number_before_its_currency(price, number):
    assert float(merchant_fields({"image_link": "x", "price": price})["price"]) == number


def test_googles_numeric_category_is_no_path_and_the_shops_own_comes_first():
    assert "category" not in merchant_fields({"google_product_category": "2271"})
    both = merchant_fields({"product_type": "Furniture > Sofas", "google_product_category": "Furniture > Couches"})
    assert both["category"] == "Furniture > Sofas" and both["google_product_category"] == "Furniture > Couches"


def test_a_price_that_is_no_amount_is_refused_naming_the_line(tmp_path):
    path = write(tmp_path / "products.txt", TSV.replace("1,299.00 USD", "call us"))
    with pytest.raises(DataError) as refused:
        list(iter_catalog(path))
    assert refused.value.line == 2 and "price" in refused.value.reason


def test_an_xml_feed_that_does_not_parse_names_its_line(tmp_path):
    path = write(tmp_path / "feed.xml", RSS.replace("</item>", "</itm>"))
    with pytest.raises(DataError) as refused:
        list(iter_catalog(path))
    assert refused.value.line == 17 and "unreadable XML" in refused.value.reason


def test_an_xml_feed_in_the_latin_1_its_declaration_names_is_read(tmp_path):
    latin1 = RSS.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>')
    path = tmp_path / "feed.xml"
    path.write_bytes(latin1.replace("Brass floor lamp", "Lampe en laiton doré").encode("latin-1"))
    [lamp] = iter_catalog(path)
    assert lamp.title == "Lampe en laiton doré"


def test_an_xml_feed_on_one_line_streams_without_holding_the_file(tmp_path):
    item = RSS[RSS.index("<item>") : RSS.index("</item>") + len("</item>")].replace("\n", "")
    items = "".join(item.replace("lamp-7", f"lamp-{number}") for number in range(5000))
    path = write(tmp_path / "feed.xml", RSS[: RSS.index("<item>")].replace("\n", "") + items + "</channel></rss>")
    tracemalloc.start()
    try:
        assert sum(1 for _ in iter_xml_records(path)) == 5000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < path.stat().st_size / 4


def test_the_first_of_several_comma_separated_product_types_is_the_category():
    fields = merchant_fields({"image_link": "x", "product_type": "Books > Sports,Books > Business"})
    assert fields["category"] == "Books > Sports"
    assert fields["product_type"] == "Books > Sports,Books > Business"


def test_an_xml_feeds_product_type_with_a_comma_is_one_type(tmp_path):
    """XML repeats the element for several types; a comma there is the type's own ("Food, Beverages & Tobacco")."""
    product_type = "<g:product_type>Food, Beverages &amp; Tobacco &gt; Coffee</g:product_type>"
    [lamp] = iter_catalog(write(tmp_path / "feed.xml", RSS.replace("<link>", product_type + "<link>", 1)))
    assert lamp.category == ("Food, Beverages & Tobacco", "Coffee")


def test_an_atom_entrys_link_and_summary_are_its_link_and_description(tmp_path):
    atom = """<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
  <entry>
    <g:id>TV_123456</g:id>
    <title>LG 22LB4510 - 22" LED TV - 1080p (FullHD)</title>
    <link href="https://shop.example/tv-123456" />
    <summary>Attractively styled and boasting stunning picture quality</summary>
    <g:image_link>https://shop.example/tv.jpg</g:image_link>
    <g:price>159.00 USD</g:price>
  </entry>
</feed>
"""
    [tv] = iter_catalog(write(tmp_path / "feed.xml", atom))
    assert tv.extra["link"] == "https://shop.example/tv-123456"
    assert tv.description == "Attractively styled and boasting stunning picture quality"


def test_an_xml_feeds_html_description_is_read_as_the_text_it_shows(tmp_path):
    description = (
        "<g:description>&lt;p&gt;&lt;b style=&quot;color:red&quot;&gt;Brass&lt;/b&gt; lamp&lt;/p&gt;</g:description>"
    )
    [lamp] = iter_catalog(write(tmp_path / "feed.xml", RSS.replace("<link>", description + "<link>", 1)))
    assert lamp.description == "Brass lamp"


def test_an_xml_file_without_items_is_refused_saying_so(tmp_path):
    with pytest.raises(DataError, match="no <item> or <entry> elements"):
        list(iter_catalog(write(tmp_path / "feed.xml", "<?xml version='1.0'?><catalog><product/></catalog>")))
