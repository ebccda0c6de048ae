// Searchkit with InstantSearch.js widgets, pointed at this service's Elasticsearch-compatible /_msearch.
import Client from "@searchkit/instantsearch-client";
import instantsearch from "instantsearch.js";
import { hits, pagination, refinementList, searchBox, sortBy, stats } from "instantsearch.js/es/widgets";
import Searchkit from "searchkit";

const searchkit = new Searchkit({
  connection: { host: window.location.origin },
  search_settings: {
    search_attributes: [{ field: "title", weight: 3 }, "description", "brand"],
    result_attributes: ["title", "brand", "price"],
    highlight_attributes: ["title"],
    facet_attributes: [{ attribute: "brand", field: "brand.keyword", type: "string" }],
    sorting: {
      _price_asc: { field: "price", order: "asc" },
      _price_desc: { field: "price", order: "desc" },
    },
  },
});

const search = instantsearch({ indexName: "products", searchClient: Client(searchkit) });
search.addWidgets([
  searchBox({ container: "#searchbox", placeholder: "Search products" }),
  stats({ container: "#stats" }),
  sortBy({
    container: "#sort",
    items: [
      { label: "relevance", value: "products" },
      { label: "price, lowest first", value: "products_price_asc" },
      { label: "price, highest first", value: "products_price_desc" },
    ],
  }),
  refinementList({ container: "#brands", attribute: "brand" }),
  hits({
    container: "#hits",
    templates: {
      item: (hit, { html, components }) =>
        html`<div class="result" data-id="${hit.objectID}">
          <span class="title">${components.Highlight({ attribute: "title", hit })}</span>
          <span class="brand">${hit.brand}</span> <span class="price" data-price="${hit.price}">${hit.price}</span>
        </div>`,
    },
  }),
  pagination({ container: "#pagination", padding: 2 }),
]);
search.on("error", ({ error }) => {
  document.getElementById("error").textContent = String(error?.message ?? error);
});
search.start();
