// Product text is data: everything is escaped, then only the highlight tags the server added are let through.
export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function highlighted(snippet) {
  return escapeHtml(snippet).replace(/&#60;em&#62;/g, "<em>").replace(/&#60;\/em&#62;/g, "</em>");
}
