// Elastic Search UI's headless core (SearchDriver) with its Elasticsearch connector, pointed at this service's
// Elasticsearch-compatible /products/_search, rendered with plain DOM.
import { SearchDriver } from "@elastic/search-ui";
import ElasticsearchAPIConnector from "@elastic/search-ui-elasticsearch-connector";
import { escapeHtml, highlighted } from "./escape.js";

const connector = new ElasticsearchAPIConnector({ host: window.location.origin, index: "products" });
const PRICE_RANGES = [
  { name: "under 100", from: 0, to: 100 },
  { name: "100 to 500", from: 100, to: 500 },
  { name: "500 and up", from: 500, to: 100000 },
];
const driver = new SearchDriver({
  apiConnector: connector,
  trackUrlState: false,
  alwaysSearchOnInitialLoad: false,
  initialState: { resultsPerPage: 5 },
  searchQuery: {
    search_fields: { title: { weight: 3 }, description: {}, brand: {} },
    result_fields: { title: { snippet: {} }, brand: { raw: {} }, price: { raw: {} } },
    facets: { "brand.keyword": { type: "value", size: 10 }, price: { type: "range", ranges: PRICE_RANGES } },
    disjunctiveFacets: ["brand.keyword"],
  },
  autocompleteQuery: {
    results: { resultsPerPage: 5, search_fields: { title: {} }, result_fields: { title: { snippet: {} } } },
  },
});
const actions = driver.getActions();
const $ = (id) => document.getElementById(id);

function titleOf(result) {
  const snippet = result.title?.snippet;
  return snippet ? highlighted(Array.isArray(snippet) ? snippet[0] : snippet) : escapeHtml(result.title?.raw);
}

function render(state) {
  document.body.dataset.state = state.isLoading ? "loading" : "ready";
  $("error").textContent = state.error || "";
  $("total").textContent = state.wasSearched ? `${state.totalResults} results` : "";
  $("results").innerHTML = state.results
    .map(
      (r) =>
        `<li class="result" data-id="${escapeHtml(r.id.raw)}"><span class="title">${titleOf(r)}</span>` +
        ` <span class="brand">${escapeHtml(r.brand?.raw)}</span>` +
        ` <span class="price" data-price="${escapeHtml(r.price?.raw)}">${escapeHtml(r.price?.raw)}</span></li>`,
    )
    .join("");
  const brands = state.facets["brand.keyword"]?.[0]?.data ?? [];
  const selected = new Set(state.filters.filter((f) => f.field === "brand.keyword").flatMap((f) => f.values));
  $("brands").innerHTML = brands
    .map(
      (b) =>
        `<li><label><input type="checkbox" class="brand-facet" value="${escapeHtml(b.value)}"` +
        `${selected.has(b.value) ? " checked" : ""}> ${escapeHtml(b.value)}` +
        ` <span class="count">${b.count}</span></label></li>`,
    )
    .join("");
  const prices = state.facets.price?.[0]?.data ?? [];
  $("prices").innerHTML = prices
    .map((p) => `<li data-range="${escapeHtml(p.value.name)}">${escapeHtml(p.value.name)} <span class="count">${p.count}</span></li>`)
    .join("");
  $("page").textContent = state.wasSearched ? `page ${state.current} of ${state.totalPages}` : "";
  $("page").dataset.current = String(state.current);
  $("suggestions").innerHTML = state.autocompletedResults
    .map((r) => `<li class="suggestion" data-id="${escapeHtml(r.id.raw)}">${titleOf(r)}</li>`)
    .join("");
}

driver.subscribeToStateChanges(render);
render(driver.getState());

$("query").addEventListener("input", (event) =>
  actions.setSearchTerm(event.target.value, { autocompleteResults: true, refresh: false, debounce: 150 }),
);
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  $("suggestions").innerHTML = "";
  actions.setSearchTerm($("query").value, { shouldClearFilters: false });
});
$("brands").addEventListener("change", (event) => {
  const box = event.target;
  if (box.checked) actions.addFilter("brand.keyword", box.value, "any");
  else actions.removeFilter("brand.keyword", box.value, "any");
});
$("next").addEventListener("click", () => actions.setCurrent(driver.getState().current + 1));
$("sort").addEventListener("change", (event) => {
  const [field, direction] = event.target.value.split(":");
  actions.setSort(field ? [{ field, direction }] : [], undefined);
});
