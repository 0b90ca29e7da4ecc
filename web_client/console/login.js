// The staff login page: on success, back to the page that sent us here (same site only).

import { I18n, mountLanguageSwitch, preferredLanguage } from '../shared/i18n.js';
import { Api, clientSettings } from '../shared/api.js';
import { safeNextPath } from '../shared/redirect.js';

const $ = (id) => document.getElementById(id);

/** Where to go after logging in: a path on this site, never another origin. */
function nextPath() {
  return safeNextPath(new URLSearchParams(window.location.search).get('next'));
}

async function main() {
  const i18n = new I18n();
  const api = new Api();
  await i18n.setLanguage(preferredLanguage(), { remember: false });
  mountLanguageSwitch($('lang-switch'), i18n);
  clientSettings().then((settings) => { $('court-name').textContent = settings.court_name; }).catch(() => {});
  if (await api.session().catch(() => null)) {
    window.location.replace(nextPath());
    return;
  }
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('login-error');
    error.hidden = true;
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    if (!username || !password) {
      i18n.render(error, 'login.missing');
      error.hidden = false;
      return;
    }
    $('login-submit').disabled = true;
    try {
      await api.login(username, password);
      window.location.assign(nextPath());
    } catch (failure) {
      const key = i18n.has(`api_error.${failure.code}`) ? `api_error.${failure.code}` : 'api_error.generic';
      i18n.render(error, key);
      error.hidden = false;
      $('login-submit').disabled = false;
      $('login-password').select();
    }
  });
  $('login-username').focus();
}

main();
