// The archive search: case number (exact or prefix), dates, court, courtroom, judge and party name;
// results sorted and paged, times in the court's time zone. The search lives in the address, so the
// back button and a shared link bring the same results.

import { formatDateTime } from '../shared/dates.js';
import { el, showScreen, tr, value } from '../shared/dom.js';
import { showBanner, failureKey } from './errors.js';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 20;
const LAST_SEARCH = 'hearing-server:archive-search';
// Form field id → query parameter of the address (the API's names are set in apiQuery).
const FIELDS = {
  'q-case': 'case', 'q-case-mode': 'mode', 'q-party': 'party', 'q-judge': 'judge', 'q-from': 'from',
  'q-to': 'to', 'q-court': 'court', 'q-courtroom': 'courtroom',
};
const SORTS = ['scheduled_start', '-scheduled_start', 'case_number', '-case_number'];

export class SearchScreen {
  constructor(i18n, api, settings) {
    this.i18n = i18n;
    this.api = api;
    this.timeZone = settings.timezone;
    this.sort = '-scheduled_start';
    this.offset = 0;
    this.page = null;
  }

  async start() {
    $('court-zone').textContent = this.timeZone;
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.offset = 0;
      this.search(true);
    });
    $('search-clear').addEventListener('click', () => {
      $('search-form').reset();
      this.offset = 0;
      this.search(true);
    });
    for (const button of document.querySelectorAll('.sort-button')) {
      button.addEventListener('click', () => this.sortBy(button.dataset.sort));
    }
    $('page-prev').addEventListener('click', () => this.turn(-1));
    $('page-next').addEventListener('click', () => this.turn(1));
    this.i18n.addEventListener('change', () => this.render());
    window.addEventListener('popstate', () => {
      this.readAddress();
      this.search(false);
    });
    this.readAddress();
    showScreen('search-screen');
    await this.search(false);
  }

  readAddress() {
    const params = new URLSearchParams(window.location.search);
    for (const [id, name] of Object.entries(FIELDS)) {
      if (id === 'q-case-mode') $(id).value = params.get(name) === 'exact' ? 'exact' : 'prefix';
      else $(id).value = params.get(name) || '';
    }
    this.sort = SORTS.includes(params.get('sort')) ? params.get('sort') : '-scheduled_start';
    this.offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  }

  address() {
    const params = new URLSearchParams();
    for (const [id, name] of Object.entries(FIELDS)) {
      const text = $(id).value.trim();
      if (text && !(id === 'q-case-mode' && text === 'prefix')) params.set(name, text);
    }
    if (this.sort !== '-scheduled_start') params.set('sort', this.sort);
    if (this.offset) params.set('offset', String(this.offset));
    const text = params.toString();
    return text ? `/archive/?${text}` : '/archive/';
  }

  apiQuery() {
    const text = (id) => $(id).value.trim() || null;
    const exact = $('q-case-mode').value === 'exact';
    return {
      case_number: exact ? text('q-case') : null,
      case_number_prefix: exact ? null : text('q-case'),
      party: text('q-party'),
      judge: text('q-judge'),
      date_from: text('q-from'),
      date_to: text('q-to'),
      court: text('q-court'),
      courtroom: text('q-courtroom'),
      sort: this.sort,
      limit: PAGE_SIZE,
      offset: this.offset,
    };
  }

  async search(push) {
    const error = $('search-error');
    error.hidden = true;
    const from = $('q-from').value;
    const to = $('q-to').value;
    if (from && to && to < from) {
      this.i18n.render(error, 'api_error.end_before_start');
      error.hidden = false;
      return;
    }
    const address = this.address();
    if (push && address !== window.location.pathname + window.location.search) {
      window.history.pushState({}, '', address);
    }
    try {
      window.sessionStorage.setItem(LAST_SEARCH, address);
    } catch {
      /* storage disabled: "back to search" opens an empty search */
    }
    $('search-submit').disabled = true;
    document.body.dataset.searching = 'true';
    try {
      this.page = await this.api.get('/archive/hearings', this.apiQuery());
      this.render();
    } catch (failure) {
      if (failure.status === 422 || failure.status === 400) {
        this.i18n.render(error, failureKey(this.i18n, failure));
        error.hidden = false;
      } else {
        showBanner(this.i18n, failure);
      }
    } finally {
      $('search-submit').disabled = false;
      delete document.body.dataset.searching;
      document.body.dataset.searched = 'true'; // results (or their absence) are on the page now
    }
  }

  sortBy(column) {
    const current = this.sort.replace(/^-/, '');
    if (current === column) this.sort = this.sort.startsWith('-') ? column : `-${column}`;
    else this.sort = column === 'case_number' ? column : `-${column}`; // case numbers A→Z, dates newest first
    this.offset = 0;
    this.search(true);
  }

  turn(direction) {
    this.offset = Math.max(0, this.offset + direction * PAGE_SIZE);
    this.search(true);
  }

  render() {
    this.renderSortMarks();
    const page = this.page;
    if (!page) return;
    const language = this.i18n.language;
    $('results-body').replaceChildren(...page.items.map((hearing) => this.row(hearing, language)));
    $('results-empty').hidden = page.items.length > 0;
    $('results-table').hidden = page.items.length === 0;
    const first = page.items.length ? page.offset + 1 : 0;
    const last = page.offset + page.items.length;
    const total = page.total_exact ? String(page.total) : `${page.total}+`;
    this.i18n.render($('results-summary'), 'archive.results_count', { total });
    const paged = page.offset > 0 || page.next_cursor !== null;
    $('pager').hidden = !paged;
    this.i18n.render($('page-where'), 'archive.page_range', { first, last, total });
    $('page-prev').disabled = page.offset === 0;
    $('page-next').disabled = page.next_cursor === null;
  }

  renderSortMarks() {
    const column = this.sort.replace(/^-/, '');
    const direction = this.sort.startsWith('-') ? 'descending' : 'ascending';
    for (const button of document.querySelectorAll('.sort-button')) {
      const header = button.closest('th');
      const active = button.dataset.sort === column;
      header.setAttribute('aria-sort', active ? direction : 'none');
      button.dataset.i18nAttr = active
        ? `title:archive.sorted_${direction}`
        : 'title:archive.sort_by';
    }
    this.i18n.apply($('results-table').tHead);
  }

  row(hearing, language) {
    const link = el('a', { href: `/archive/hearing/${encodeURIComponent(hearing.id)}`, class: 'case-link' },
      value(hearing.case_number));
    const parties = el('ul', { class: 'inline-list' }, ...hearing.parties
      .filter((party) => party.role !== 'courtroom')
      .map((party) => el('li', {}, value(party.display_name), ' ',
        tr(this.i18n, `role.${party.role}`, null, 'span', { class: 'hint role-note' }))));
    const status = el('td', {}, tr(this.i18n, `status.${hearing.status}`, null, 'span', { class: `status status-${hearing.status}` }));
    if (hearing.legal_hold) status.append(tr(this.i18n, 'archive.on_hold', null, 'span', { class: 'hold-badge block' }));
    return el('tr', { dataset: { hearingId: hearing.id } },
      el('td', {}, value(formatDateTime(hearing.scheduled_start, language, this.timeZone))),
      el('td', {}, link),
      el('td', {}, value(hearing.title)),
      el('td', {}, value(hearing.court, 'span', { class: 'block' }), value(hearing.courtroom, 'span', { class: 'hint block' })),
      el('td', {}, value(hearing.presiding_judge)),
      el('td', {}, parties),
      status);
  }
}

/** The address of the last search (for "back to the search" on a hearing's page). */
export function lastSearch() {
  try {
    return window.sessionStorage.getItem(LAST_SEARCH) || '/archive/';
  } catch {
    return '/archive/';
  }
}
