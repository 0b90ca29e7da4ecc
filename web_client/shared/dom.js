// Small DOM helpers shared by the pages (no framework).

/** Create an element: el('button', {class: 'x', dataset: {a: 1}, on: {click: f}}, child, ...). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') element.className = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name === 'on') for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    else if (name === 'text') element.textContent = value;
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Data shown as it is (names, case numbers, times): marked so it is not taken for interface text. */
export function value(text, tag = 'span', attributes = {}) {
  return el(tag, { ...attributes, dataset: { ...(attributes.dataset || {}), value: '' } }, text ?? '');
}

/** Translated text: <tag data-i18n=key>. */
export function tr(i18n, key, params = null, tag = 'span', attributes = {}) {
  return i18n.render(el(tag, attributes), key, params);
}

/** Show one `section.screen` of the page, hide the others, and move focus to its heading. */
export function showScreen(id) {
  for (const screen of document.querySelectorAll('.screen')) screen.hidden = screen.id !== id;
  const screen = document.getElementById(id);
  const heading = screen && screen.querySelector('h1, h2');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
  window.scrollTo(0, 0);
}

/** Translate a `code` from the server with `prefix.code`, falling back to a generic message. */
export function errorKey(i18n, prefix, code, fallback) {
  const key = `${prefix}.${code}`;
  return i18n.has(key) ? key : fallback;
}
