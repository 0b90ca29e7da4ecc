// A judge's own signing key: upload the .p12 with its passphrase (locked with the judge's password) and see
// the certificate; the server never shows the key back.

import { formatDateTime } from '../shared/dates.js';
import { tr, value } from '../shared/dom.js';

const $ = (id) => document.getElementById(id);

/** Read a file as base64 (the API takes the PKCS#12 inside JSON). */
function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1] || '');
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export class SigningKeyCard {
  constructor(i18n, api, timeZone, onChange) {
    this.i18n = i18n;
    this.api = api;
    this.timeZone = timeZone;
    this.onChange = onChange;
    this.key = null;
  }

  /** Show the card to judges and load their certificate. */
  async start() {
    const user = this.api.user;
    if (!user || user.role !== 'judge') return;
    $('key-card').hidden = false;
    $('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.upload();
    });
    this.i18n.addEventListener('change', () => this.render());
    await this.load();
  }

  get path() {
    return `/users/${encodeURIComponent(this.api.user.id)}/signing-key`;
  }

  async load() {
    try {
      this.key = await this.api.get(this.path);
    } catch {
      this.key = null;
    }
    this.render();
    this.onChange(this.key);
  }

  render() {
    const key = this.key;
    $('key-none').hidden = Boolean(key);
    const facts = $('key-facts');
    facts.hidden = !key;
    if (!key) return;
    const when = (iso) => formatDateTime(iso, this.i18n.language, this.timeZone);
    facts.replaceChildren(
      tr(this.i18n, 'signing_key.subject', null, 'dt'), value(key.subject, 'dd'),
      tr(this.i18n, 'signing_key.issuer', null, 'dt'), value(key.issuer, 'dd'),
      tr(this.i18n, 'signing_key.validity', null, 'dt'),
      tr(this.i18n, 'signing_key.valid_range', { from: when(key.not_before), to: when(key.not_after) }, 'dd'),
      tr(this.i18n, 'signing_key.fingerprint', null, 'dt'), value(key.fingerprint_sha256, 'dd', { class: 'mono' }),
    );
  }

  async upload() {
    const error = $('key-error');
    error.hidden = true;
    const file = $('key-file').files[0];
    if (!file) {
      this.i18n.render(error, 'signing_key.file_missing');
      error.hidden = false;
      return;
    }
    $('key-submit').disabled = true;
    try {
      const body = {
        pkcs12: await base64Of(file),
        passphrase: $('key-passphrase').value,
        password: $('key-password').value,
      };
      this.key = await this.api.request('PUT', this.path, body);
      for (const id of ['key-file', 'key-passphrase', 'key-password']) $(id).value = '';
      this.render();
      this.onChange(this.key);
    } catch (failure) {
      const key = this.i18n.has(`api_error.${failure.code}`) ? `api_error.${failure.code}` : 'api_error.generic';
      this.i18n.render(error, key);
      error.hidden = false;
    } finally {
      $('key-submit').disabled = false;
    }
  }
}
