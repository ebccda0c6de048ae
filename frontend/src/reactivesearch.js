// appbase.io's ReactiveSearch 4 (React) pointed at this service: ReactiveBase's url is the service and its app the
// index, so every search is ReactiveSearch 4's own request, one POST /products/_reactivesearch of its query
// language (4.x has no Elasticsearch _msearch mode any more; the service translates it).
import { MultiList, RangeInput, ReactiveBase, ReactiveList, SearchBox } from "@appbaseio/reactivesearch";
import { createElement as h } from "react";
import { render } from "react-dom";
import { highlighted } from "./escape.js";

const SORT_OPTIONS = [
  { label: "relevance", dataField: "_score", sortBy: "desc" },
  { label: "price, lowest first", dataField: "price", sortBy: "asc" },
  { label: "price, highest first", dataField: "price", sortBy: "desc" },
];

// ReactiveSearch puts a hit's highlight in place of the field's text, with the <mark> tags it asks for; React
// escapes the rest (brand and price are text).
const result = (hit) =>
  h(
    "li",
    { className: "result", key: hit._id, "data-id": hit._id },
    h("span", { className: "title", dangerouslySetInnerHTML: { __html: highlighted(hit.title, "mark") } }),
    " ",
    h("span", { className: "brand" }, hit.brand),
    " ",
    h("span", { className: "price", "data-price": hit.price }, hit.price),
  );

const brand = (label, count) =>
  h("span", { className: "brand-facet", "data-brand": label }, label, " ", h("span", { className: "count" }, count));

const searchBox = h(SearchBox, {
  componentId: "search",
  dataField: [
    { field: "title", weight: 3 },
    { field: "description", weight: 1 },
    { field: "brand", weight: 1 },
  ],
  highlight: true,
  highlightField: "title",
  autosuggest: false,
  debounce: 100,
  placeholder: "Search products",
  innerClass: { input: "query" },
});

const facets = h(
  "aside",
  null,
  h(
    "div",
    { id: "brands" },
    h(MultiList, {
      componentId: "brand",
      dataField: "brand.keyword",
      title: "Brand",
      size: 10,
      showSearch: false,
      react: { and: ["search", "price"] },
      renderItem: brand,
    }),
  ),
  h(
    "div",
    { id: "prices" },
    h(RangeInput, {
      componentId: "price",
      dataField: "price",
      title: "Price",
      range: { start: 0, end: 5000 },
      showHistogram: false,
      react: { and: ["search", "brand"] },
    }),
  ),
);

const results = h(ReactiveList, {
  componentId: "results",
  dataField: "title",
  size: 5,
  pagination: true,
  pages: 5,
  sortOptions: SORT_OPTIONS,
  innerClass: { sortOptions: "sort", pagination: "pages" },
  react: { and: ["search", "brand", "price"] },
  renderResultStats: ({ numberOfResults }) => h("p", { id: "total" }, `${numberOfResults} results`),
  render: ({ data }) => h("ol", { id: "results" }, data.map(result)),
  renderError: (error) => h("p", { id: "error" }, String(error?.message ?? JSON.stringify(error))),
});

render(
  h(
    ReactiveBase,
    // Without recordAnalytics: false ReactiveBase starts appbase.io's analytics, which refuse to without credentials.
    { url: window.location.origin, app: "products", reactivesearchAPIConfig: { recordAnalytics: false } },
    searchBox,
    h("div", { className: "layout" }, facets, h("main", null, results)),
  ),
  document.getElementById("app"),
);
