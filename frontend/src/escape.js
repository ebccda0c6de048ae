// Product text is data: everything is escaped, then only the highlight tags the server added are let through.
export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function highlighted(snippet, tag = "em") {
  const [open, close] = [`&#60;${tag}&#62;`, `&#60;/${tag}&#62;`];
  return escapeHtml(snippet).replaceAll(open, `<${tag}>`).replaceAll(close, `</${tag}>`);
}
