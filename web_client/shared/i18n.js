// Translations: one JSON catalog per language; every visible string comes from a catalog.
//
// Markup: <el data-i18n="key"> gets the text of `key`; <el data-i18n-attr="aria-label:key;title:key2">
// gets attributes. Text with {placeholders} is rendered with each value in its own
// <span data-value> so that data (names, times) is never mistaken for interface text.

export const LANGUAGES = ['kk', 'ru', 'en'];
const STORAGE_KEY = 'hearing-server:language';
const FALLBACK = 'ru';
const PLACEHOLDER = /\{(\w+)\}/g;
const HAS_PLACEHOLDER = /\{\w+\}/;

/** Intl locale for each interface language. */
export const LOCALES = { kk: 'kk-KZ', ru: 'ru-RU', en: 'en-GB' };

function rememberedLanguage() {
  try {
    const value = window.localStorage.getItem(STORAGE_KEY);
    return LANGUAGES.includes(value) ? value : null;
  } catch {
    return null; // storage disabled (private mode): the browser's languages decide
  }
}

/** The language to start with: the one chosen before, else the browser's (Accept-Language) order. */
export function preferredLanguage(fallback = FALLBACK) {
  const remembered = rememberedLanguage();
  if (remembered) return remembered;
  for (const tag of navigator.languages || [navigator.language]) {
    const base = String(tag || '').toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return fallback;
}

export class I18n extends EventTarget {
  constructor() {
    super();
    this.language = null;
    this.catalog = {};
    this._params = new WeakMap();
    this._cache = new Map();
  }

  async _load(language) {
    if (!this._cache.has(language)) {
      const response = await fetch(`/static/i18n/${language}.json`, { credentials: 'same-origin' });
      if (!response.ok) throw new Error(`catalog ${language}: HTTP ${response.status}`);
      this._cache.set(language, await response.json());
    }
    return this._cache.get(language);
  }

  /** Switch the interface to `language`, re-render the page and (by default) remember the choice. */
  async setLanguage(language, { remember = true } = {}) {
    if (!LANGUAGES.includes(language)) language = FALLBACK;
    this.catalog = await this._load(language);
    this.language = language;
    document.documentElement.lang = language;
    if (remember) {
      try {
        window.localStorage.setItem(STORAGE_KEY, language);
      } catch {
        /* storage disabled: the choice lasts for this page only */
      }
    }
    this.apply(document);
    this.dispatchEvent(new CustomEvent('change', { detail: { language } }));
  }

  get locale() {
    return LOCALES[this.language] || 'en-GB';
  }

  has(key) {
    return Object.prototype.hasOwnProperty.call(this.catalog, key);
  }

  /** The text of `key` with {placeholders} filled in (for attributes and announcements). */
  t(key, params = {}) {
    const template = this.has(key) ? this.catalog[key] : key;
    return template.replace(PLACEHOLDER, (_, name) => (name in params ? String(params[name]) : ''));
  }

  /** Put the text of `key` into `element`, each placeholder value in a <span data-value>. */
  render(element, key, params = null) {
    element.dataset.i18n = key;
    if (params) this._params.set(element, params);
    else this._params.delete(element);
    this._fill(element);
    return element;
  }

  _fill(element) {
    const key = element.dataset.i18n;
    const params = this._params.get(element) || {};
    const template = this.has(key) ? this.catalog[key] : key;
    if (!this.has(key)) console.warn('i18n: missing key', key);
    if (!HAS_PLACEHOLDER.test(template)) {
      element.textContent = template;
      return;
    }
    const parts = [];
    let last = 0;
    for (const match of template.matchAll(PLACEHOLDER)) {
      if (match.index > last) parts.push(document.createTextNode(template.slice(last, match.index)));
      const value = document.createElement('span');
      value.dataset.value = match[1];
      value.textContent = params[match[1]] === undefined ? '' : String(params[match[1]]);
      parts.push(value);
      last = match.index + match[0].length;
    }
    if (last < template.length) parts.push(document.createTextNode(template.slice(last)));
    element.replaceChildren(...parts);
  }

  /** Translate every marked element under `root`. */
  apply(root) {
    if (!this.language) return;
    const scope = root.querySelectorAll ? root : document;
    const marked = [...scope.querySelectorAll('[data-i18n]')];
    if (root.matches && root.matches('[data-i18n]')) marked.push(root);
    for (const element of marked) this._fill(element);
    for (const element of scope.querySelectorAll('[data-i18n-attr]')) {
      for (const pair of element.dataset.i18nAttr.split(';')) {
        const [attribute, key] = pair.split(':').map((s) => s.trim());
        if (attribute && key) element.setAttribute(attribute, this.t(key));
      }
    }
  }
}

/** Buttons that switch the interface language (each language named in itself). */
export function mountLanguageSwitch(container, i18n, { short = false, languages = LANGUAGES } = {}) {
  container.replaceChildren();
  container.setAttribute('role', 'group');
  container.dataset.i18nAttr = 'aria-label:language.choose';
  for (const language of languages) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'lang-button';
    button.lang = language;
    button.dataset.language = language;
    i18n.render(button, short ? `language.${language}_short` : `language.${language}`);
    if (short) button.dataset.i18nAttr = `aria-label:language.${language}`;
    button.addEventListener('click', () => i18n.setLanguage(language));
    container.append(button);
  }
  const mark = () => {
    for (const button of container.querySelectorAll('button')) {
      button.setAttribute('aria-pressed', String(button.dataset.language === i18n.language));
    }
  };
  i18n.addEventListener('change', mark);
  mark();
  i18n.apply(container);
}
