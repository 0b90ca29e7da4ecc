// The staff login page: on success, back to the page that sent us here (same site only). An account that
// logged in with a one-time password chooses its own here first (the server refuses everything else).

import { I18n, mountLanguageSwitch, preferredLanguage } from '../shared/i18n.js';
import { Api, clientSettings } from '../shared/api.js';
import { safeNextPath } from '../shared/redirect.js';

const $ = (id) => document.getElementById(id);

/** Where to go after logging in: a path on this site, never another origin. */
function nextPath() {
  return safeNextPath(new URLSearchParams(window.location.search).get('next'));
}

function showError(i18n, element, failure) {
  const key = i18n.has(`api_error.${failure.code}`) ? `api_error.${failure.code}` : 'api_error.generic';
  i18n.render(element, key);
  element.hidden = false;
}

/** The change-password form instead of the login form; `current` is the password just typed, if any. */
function askForNewPassword(i18n, api, current = '') {
  $('login-form').hidden = true;
  const form = $('password-form');
  form.hidden = false;
  $('password-username').value = (api.user && api.user.username) || '';
  $('password-current').value = current;
  (current ? $('password-new') : $('password-current')).focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('password-error');
    error.hidden = true;
    const currentPassword = $('password-current').value;
    const newPassword = $('password-new').value;
    if (!currentPassword || !newPassword || !$('password-repeat').value) {
      i18n.render(error, 'password_change.missing');
      error.hidden = false;
      return;
    }
    if (newPassword !== $('password-repeat').value) {
      i18n.render(error, 'password_change.mismatch');
      error.hidden = false;
      return;
    }
    $('password-submit').disabled = true;
    try {
      await api.post('/auth/password', { current_password: currentPassword, new_password: newPassword });
      window.location.assign(nextPath());
    } catch (failure) {
      showError(i18n, error, failure);
      $('password-submit').disabled = false;
    }
  });
}

async function main() {
  const i18n = new I18n();
  const api = new Api();
  await i18n.setLanguage(preferredLanguage(), { remember: false });
  mountLanguageSwitch($('lang-switch'), i18n);
  clientSettings().then((settings) => { $('court-name').textContent = settings.court_name; }).catch(() => {});
  const session = await api.session().catch(() => null);
  if (session && session.must_change_password) {
    askForNewPassword(i18n, api);
    return;
  }
  if (session) {
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
      const me = await api.login(username, password);
      if (me.must_change_password) {
        askForNewPassword(i18n, api, password);
        return;
      }
      window.location.assign(nextPath());
    } catch (failure) {
      showError(i18n, error, failure);
      $('login-submit').disabled = false;
      $('login-password').select();
    }
  });
  $('login-username').focus();
}

main();
