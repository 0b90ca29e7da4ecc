// The operator's hearings: today's list with filters, scheduling, parties, invitation links and QR codes.

import { formatDateTime, formatTime, localFields, todayIn, zonedIso } from '../shared/dates.js';
import { el, tr, value } from '../shared/dom.js';
import { startConsole } from './session.js';
import { SigningKeyCard } from './signing_key.js';

const $ = (id) => document.getElementById(id);
const PARTY_ROLES = [
  'plaintiff', 'defendant', 'lawyer', 'prosecutor', 'victim', 'witness', 'expert', 'interpreter',
  'judge', 'secretary', 'observer',
];

class ConsolePage {
  constructor(i18n, api, settings) {
    this.i18n = i18n;
    this.api = api;
    this.timeZone = settings.timezone;
    this.channels = new Set(settings.channels || ['handover']);
    this.issuing = null; // the party whose link the send dialog is about
    this.hearings = [];
    this.detail = null;
    this.issued = null; // the last issued link: {party, url, qr, expires_at}
    this.staff = []; // judges and operators to assign to hearings
  }

  start() {
    $('court-zone').textContent = this.timeZone;
    $('f-date').value = todayIn(this.timeZone);
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      this.loadList();
    });
    $('f-today').addEventListener('click', () => {
      $('f-date').value = todayIn(this.timeZone);
      this.loadList();
    });
    $('f-all-dates').addEventListener('click', () => {
      $('f-date').value = '';
      this.loadList();
    });
    $('schedule-open').addEventListener('click', () => this.toggleSchedule(true));
    $('staff-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.assignStaff();
    });
    this.loadStaff();
    $('schedule-cancel').addEventListener('click', () => this.toggleSchedule(false));
    $('schedule-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.schedule();
    });
    $('party-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.addParty();
    });
    $('link-copy').addEventListener('click', () => this.copyLink());
    $('issue-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.submitIssue();
    });
    $('issue-cancel').addEventListener('click', () => $('issue-dialog').close());
    $('act-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.signAct();
    });
    for (const radio of document.querySelectorAll('input[name="issue-channel"]')) {
      radio.addEventListener('change', () => this.renderIssueChannel());
    }
    this.signingKey = null; // the judge's own certificate, if they uploaded one
    new SigningKeyCard(this.i18n, this.api, this.timeZone, (key) => this.useSigningKey(key)).start();
    this.fillRoles();
    this.i18n.addEventListener('change', () => this.rerender());
    window.addEventListener('popstate', () => this.openFromAddress());
    this.loadList();
    this.openFromAddress();
  }

  fillRoles() {
    const select = $('p-role');
    select.replaceChildren(...PARTY_ROLES.map((role) => tr(this.i18n, `role.${role}`, null, 'option', { value: role })));
    select.value = 'witness';
  }

  rerender() {
    this.renderList();
    if (this.detail) this.renderDetail();
  }

  showError(error) {
    const banner = $('banner-error');
    const key = this.i18n.has(`api_error.${error.code}`) ? `api_error.${error.code}` : 'api_error.generic';
    this.i18n.render(banner, key);
    banner.hidden = false;
    clearTimeout(this._errorTimer);
    this._errorTimer = setTimeout(() => { banner.hidden = true; }, 8000);
  }

  formError(id, error) {
    const box = $(id);
    const key = this.i18n.has(`api_error.${error.code}`) ? `api_error.${error.code}` : 'api_error.generic';
    this.i18n.render(box, key);
    box.hidden = false;
  }

  // --- the list -----------------------------------------------------------------------------

  async loadList() {
    const date = $('f-date').value;
    const query = {
      date_from: date || null,
      date_to: date || null,
      status: $('f-status').value || null,
      case_number: $('f-case').value.trim() || null,
      limit: 200,
    };
    try {
      const page = await this.api.get('/hearings', query);
      this.hearings = page.items;
      this.renderList();
    } catch (error) {
      this.showError(error);
    }
  }

  renderList() {
    const body = $('hearings-body');
    const showDate = !$('f-date').value;
    body.replaceChildren(...this.hearings.map((hearing) => {
      const when = showDate
        ? formatDateTime(hearing.scheduled_start, this.i18n.language, this.timeZone)
        : formatTime(hearing.scheduled_start, this.i18n.language, this.timeZone);
      const open = el('a', {
        href: `/console/?hearing=${encodeURIComponent(hearing.id)}`,
        class: 'case-link',
        dataset: { hearingId: hearing.id },
        on: {
          click: (event) => {
            event.preventDefault();
            this.openHearing(hearing.id, true);
          },
        },
      }, value(hearing.case_number));
      const row = el('tr', { dataset: { hearingId: hearing.id } },
        el('td', {}, value(when)),
        el('td', {}, open),
        el('td', {}, value(hearing.title)),
        el('td', {}, value(hearing.courtroom)),
        el('td', {}, tr(this.i18n, `status.${hearing.status}`, null, 'span', { class: `status status-${hearing.status}` })));
      if (this.detail && this.detail.id === hearing.id) row.classList.add('selected');
      return row;
    }));
    $('hearings-empty').hidden = this.hearings.length > 0;
  }

  // --- scheduling ---------------------------------------------------------------------------

  toggleSchedule(open) {
    $('schedule-form').hidden = !open;
    $('schedule-open').setAttribute('aria-expanded', String(open));
    if (open) {
      if (!$('s-date').value) $('s-date').value = $('f-date').value || todayIn(this.timeZone);
      $('s-language').value = this.i18n.language;
      $('schedule-error').hidden = true;
      $('s-case').focus();
    } else {
      $('schedule-open').focus();
    }
  }

  async schedule() {
    const error = $('schedule-error');
    error.hidden = true;
    const required = ['s-case', 's-title', 's-courtroom', 's-date', 's-time', 's-duration'];
    if (!$('s-judge-account').value) required.push('s-judge');
    const missing = required.find((id) => !$(id).value.trim());
    if (missing) {
      this.i18n.render(error, 'schedule.missing');
      error.hidden = false;
      $(missing).focus();
      return;
    }
    const body = {
      case_number: $('s-case').value.trim(),
      title: $('s-title').value.trim(),
      courtroom: $('s-courtroom').value.trim(),
      scheduled_start: zonedIso($('s-date').value, $('s-time').value, this.timeZone),
      duration_minutes: Number($('s-duration').value),
      notice_language: $('s-language').value,
    };
    if ($('s-judge').value.trim()) body.presiding_judge = $('s-judge').value.trim();
    if ($('s-judge-account').value) body.presiding_judge_id = $('s-judge-account').value;
    if ($('s-secretary').value) body.secretary_id = $('s-secretary').value;
    $('schedule-submit').disabled = true;
    try {
      const hearing = await this.api.post('/hearings', body);
      $('schedule-form').reset();
      $('s-duration').value = '60';
      this.toggleSchedule(false);
      $('f-date').value = localFields(hearing.scheduled_start, this.timeZone).date;
      await this.loadList();
      await this.openHearing(hearing.id, true);
    } catch (failure) {
      this.formError('schedule-error', failure);
    } finally {
      $('schedule-submit').disabled = false;
    }
  }

  // --- one hearing --------------------------------------------------------------------------

  openFromAddress() {
    const id = new URLSearchParams(window.location.search).get('hearing');
    if (id) this.openHearing(id, false);
    else {
      this.detail = null;
      $('detail').hidden = true;
    }
  }

  async openHearing(id, push) {
    if (push) window.history.pushState({}, '', `/console/?hearing=${encodeURIComponent(id)}`);
    try {
      const detail = await this.api.get(`/hearings/${encodeURIComponent(id)}`);
      if (!this.detail || this.detail.id !== detail.id) this.issued = null;
      this.detail = detail;
      this.renderDetail();
      this.renderList();
      $('detail').hidden = false;
      $('detail-title').setAttribute('tabindex', '-1');
      if (push) $('detail-title').focus();
    } catch (error) {
      this.showError(error);
    }
  }

  async reloadDetail() {
    if (!this.detail) return;
    this.detail = await this.api.get(`/hearings/${encodeURIComponent(this.detail.id)}`);
    this.renderDetail();
  }

  renderDetail() {
    const hearing = this.detail;
    const language = this.i18n.language;
    $('detail-case').textContent = hearing.case_number;
    $('detail-subtitle').textContent = hearing.title;
    $('detail-when').textContent = formatDateTime(hearing.scheduled_start, language, this.timeZone);
    this.i18n.render($('detail-duration'), 'detail.minutes', { minutes: hearing.duration_minutes });
    $('detail-courtroom').textContent = hearing.courtroom;
    $('detail-judge').textContent = hearing.presiding_judge;
    this.i18n.render($('detail-language'), `language.${hearing.notice_language}`);
    this.i18n.render($('detail-status'), `status.${hearing.status}`);
    $('detail-secretary').textContent = this.staffName(hearing.secretary_id);
    $('detail-run').href = `/console/hearing/${encodeURIComponent(hearing.id)}`;
    const live = !['ended', 'sealed', 'cancelled'].includes(hearing.status);
    // Another operator's or judge's hearing is read-only: no courtroom console, no changes.
    const readOnly = !hearing.may_operate;
    $('detail-read-only').hidden = !readOnly;
    $('detail-run').hidden = !live || readOnly;
    $('party-form').hidden = !live || readOnly;
    const role = this.api.user ? this.api.user.role : '';
    $('staff-form').hidden = !live || readOnly || !['operator', 'admin'].includes(role);
    this.fillStaffSelect($('d-judge-account'), 'judge', hearing.presiding_judge_id);
    this.fillStaffSelect($('d-secretary'), 'operator', hearing.secretary_id);
    $('staff-error').hidden = true;
    const parties = hearing.parties.filter((p) => p.role !== 'courtroom');
    $('parties-body').replaceChildren(...parties.map((party) => this.partyRow(party, live && !readOnly)));
    $('parties-empty').hidden = parties.length > 0;
    this.renderLink();
    $('act-form').hidden = !hearing.may_sign_acts || hearing.status === 'cancelled';
    $('act-addendum-hint').hidden = hearing.status !== 'sealed'; // a late act is sealed as an addendum
    this.loadActs(hearing.id);
  }

  // --- staff: the presiding judge and the secretary, chosen from the court's accounts ----------------------

  async loadStaff() {
    try {
      this.staff = (await this.api.get('/staff')).items;
    } catch (error) {
      this.staff = [];
    }
    this.fillStaffSelect($('s-judge-account'), 'judge', '');
    this.fillStaffSelect($('s-secretary'), 'operator', '');
    if (this.detail) this.renderDetail();
  }

  staffName(id) {
    const member = this.staff.find((m) => m.id === id);
    return member ? (member.display_name || member.username) : '';
  }

  fillStaffSelect(select, role, chosen) {
    const none = tr(this.i18n, 'schedule.no_account', null, 'option', { value: '' });
    const options = this.staff.filter((m) => m.role === role)
      .map((m) => el('option', { value: m.id }, m.display_name || m.username));
    select.replaceChildren(none, ...options);
    select.value = chosen || '';
  }

  async assignStaff() {
    const hearing = this.detail;
    const error = $('staff-error');
    error.hidden = true;
    $('staff-submit').disabled = true;
    try {
      await this.api.patch(`/hearings/${encodeURIComponent(hearing.id)}`, {
        presiding_judge_id: $('d-judge-account').value || null,
        secretary_id: $('d-secretary').value || null,
      });
      await this.reloadDetail();
      await this.loadList();
    } catch (failure) {
      this.formError('staff-error', failure);
    } finally {
      $('staff-submit').disabled = false;
    }
  }

  // --- court acts: the judge signs a PDF with their own key or the court's; everyone with the hearing sees them

  useSigningKey(key) {
    this.signingKey = key;
    $('act-password-field').hidden = !key;
    this.i18n.render($('act-hint'), key ? 'acts.form_hint_own' : 'acts.form_hint');
  }

  async loadActs(hearingId) {
    try {
      const page = await this.api.get(`/hearings/${encodeURIComponent(hearingId)}/acts`);
      if (!this.detail || this.detail.id !== hearingId) return;
      this.acts = page.items || [];
    } catch (error) {
      this.acts = [];
    }
    this.renderActs();
  }

  renderActs() {
    const acts = this.acts || [];
    const hearingId = this.detail ? this.detail.id : '';
    $('acts-empty').hidden = acts.length > 0;
    $('acts-staff-list').replaceChildren(...acts.map((act) => {
      const link = el('a', {
        class: 'button button-small',
        href: `/api/v1/hearings/${encodeURIComponent(hearingId)}/acts/${encodeURIComponent(act.id)}/pdf`,
        download: act.file_name,
      });
      this.i18n.render(link, 'acts.download');
      return el('li', { class: 'act', dataset: { actId: act.id } },
        value(act.title, 'strong', { class: 'block' }),
        tr(this.i18n, 'acts.signed', {
          signer: act.signer_subject, time: formatDateTime(act.signed_at, this.i18n.language, this.timeZone),
        }, 'span', { class: 'hint block' }),
        link);
    }));
  }

  async signAct() {
    const error = $('act-error');
    error.hidden = true;
    const title = $('act-title').value.trim();
    const file = $('act-file').files[0];
    if (!title || !file) {
      this.i18n.render(error, title ? 'acts.file_missing' : 'acts.title_missing');
      error.hidden = false;
      return;
    }
    const password = $('act-password').value;
    if (this.signingKey && !password) {
      this.i18n.render(error, 'acts.password_missing');
      error.hidden = false;
      return;
    }
    // The password unlocks the judge's key on the server; percent-encoded (headers carry Latin-1 only).
    const headers = this.signingKey ? { 'X-Signing-Password': encodeURIComponent(password) } : {};
    $('act-submit').disabled = true;
    try {
      await this.api.upload(`/hearings/${encodeURIComponent(this.detail.id)}/acts`, file, { title, file_name: file.name }, headers);
      $('act-title').value = '';
      $('act-file').value = '';
      $('act-password').value = '';
      await this.loadActs(this.detail.id);
    } catch (failure) {
      this.formError('act-error', failure);
    } finally {
      $('act-submit').disabled = false;
    }
  }

  partyRow(party, live) {
    const invitation = party.invitation;
    const linkStatus = invitation ? `link.status_${invitation.status}` : 'link.status_none';
    const actions = el('td', { class: 'row-actions' });
    if (live) {
      const issue = el('button', {
        type: 'button',
        class: 'button button-small',
        dataset: { action: 'issue', partyId: party.id },
        on: { click: () => this.issueLink(party) },
      });
      this.i18n.render(issue, invitation && invitation.status === 'active' ? 'link.new' : 'link.issue');
      actions.append(issue);
      if (invitation && invitation.status === 'active') {
        const revoke = el('button', {
          type: 'button',
          class: 'button button-small button-danger-outline',
          dataset: { action: 'revoke', partyId: party.id },
          on: { click: () => this.revokeLink(party) },
        });
        this.i18n.render(revoke, 'link.revoke');
        actions.append(revoke);
      }
    }
    const expires = invitation && invitation.status === 'active'
      ? tr(this.i18n, 'link.until', { time: formatDateTime(invitation.expires_at, this.i18n.language, this.timeZone) }, 'span', { class: 'hint block' })
      : null;
    return el('tr', { dataset: { partyId: party.id } },
      el('td', {}, value(party.display_name)),
      el('td', {}, tr(this.i18n, `role.${party.role}`)),
      el('td', {}, tr(this.i18n, party.language ? `language.${party.language}` : 'party_form.language_default')),
      el('td', {}, tr(this.i18n, linkStatus, null, 'span', { class: `link-status link-${invitation ? invitation.status : 'none'}` }), expires,
        this.deliveryNote(party.delivery)),
      actions);
  }

  // Where the party's latest message stands: what, by which channel, to whom, and its outcome.
  deliveryNote(delivery) {
    if (!delivery) return null;
    const language = this.i18n.language;
    const note = el('div', { class: `delivery delivery-${delivery.status}`, dataset: { delivery: delivery.status } });
    note.append(
      tr(this.i18n, `delivery.status_${delivery.status}`, null, 'span', { class: `badge ${delivery.status === 'sent' ? 'badge-ok' : (delivery.status === 'failed' ? 'badge-warn' : 'badge-neutral')}` }),
      tr(this.i18n, 'delivery.what', {
        kind: this.i18n.t(`delivery.kind_${delivery.kind}`),
        channel: this.i18n.t(`delivery.channel_${delivery.channel}`),
        recipient: delivery.recipient,
      }, 'span', { class: 'hint block' }),
    );
    if (delivery.status === 'sent' && delivery.sent_at) {
      note.append(tr(this.i18n, 'delivery.sent_at', { time: formatDateTime(delivery.sent_at, language, this.timeZone) }, 'span', { class: 'hint block' }));
    }
    if (delivery.status === 'pending' && delivery.attempts > 0) {
      note.append(tr(this.i18n, 'delivery.retry_at', { time: formatDateTime(delivery.next_attempt_at, language, this.timeZone), attempts: delivery.attempts }, 'span', { class: 'hint block' }));
    }
    if (delivery.last_error && delivery.status !== 'sent') {
      note.append(value(delivery.last_error, 'span', { class: 'hint block delivery-error' }));
    }
    return note;
  }

  async addParty() {
    const error = $('party-error');
    error.hidden = true;
    const name = $('p-name').value.trim();
    if (!name) {
      this.i18n.render(error, 'party_form.missing');
      error.hidden = false;
      $('p-name').focus();
      return;
    }
    const body = { role: $('p-role').value, display_name: name };
    if ($('p-language').value) body.language = $('p-language').value;
    if ($('p-contact').value.trim()) body.contact = $('p-contact').value.trim();
    $('party-submit').disabled = true;
    try {
      await this.api.post(`/hearings/${encodeURIComponent(this.detail.id)}/parties`, body);
      $('p-name').value = '';
      $('p-contact').value = '';
      await this.reloadDetail();
      $('p-name').focus();
    } catch (failure) {
      this.formError('party-error', failure);
    } finally {
      $('party-submit').disabled = false;
    }
  }

  issueLink(party) {
    this.issuing = party;
    this.i18n.render($('issue-title'), 'send.title', { name: party.display_name });
    for (const channel of ['email', 'sms']) $(`issue-${channel}`).disabled = !this.channels.has(channel);
    $('issue-unavailable').hidden = this.channels.has('email') && this.channels.has('sms');
    const contact = party.contact || '';
    const guess = contact.includes('@') ? 'email' : (/^[+\d][\d\s()-]{6,}$/.test(contact) ? 'sms' : 'handover');
    $(`issue-${this.channels.has(guess) ? guess : 'handover'}`).checked = true;
    $('issue-to').value = contact;
    $('issue-error').hidden = true;
    this.renderIssueChannel();
    $('issue-dialog').showModal();
  }

  issueChannel() {
    const checked = document.querySelector('input[name="issue-channel"]:checked');
    return checked ? checked.value : 'handover';
  }

  renderIssueChannel() {
    const channel = this.issueChannel();
    $('issue-to-field').hidden = channel === 'handover';
    if (channel !== 'handover') this.i18n.render($('issue-to-label'), `send.recipient_${channel}`);
    $('issue-to').type = channel === 'email' ? 'email' : 'tel';
  }

  async submitIssue() {
    const party = this.issuing;
    if (!party) return;
    const channel = this.issueChannel();
    const body = { channel };
    if (channel !== 'handover') body.to = $('issue-to').value.trim();
    $('issue-submit').disabled = true;
    try {
      const issued = await this.api.post(
        `/hearings/${encodeURIComponent(this.detail.id)}/parties/${encodeURIComponent(party.id)}/invitation`, body,
      );
      $('issue-dialog').close();
      this.issued = { party, ...issued };
      await this.reloadDetail();
      $('link-panel').focus();
    } catch (failure) {
      this.formError('issue-error', failure);
    } finally {
      $('issue-submit').disabled = false;
    }
  }

  async revokeLink(party) {
    try {
      await this.api.delete(`/hearings/${encodeURIComponent(this.detail.id)}/parties/${encodeURIComponent(party.id)}/invitation`);
      if (this.issued && this.issued.party.id === party.id) this.issued = null;
      await this.reloadDetail();
    } catch (error) {
      this.showError(error);
    }
  }

  renderLink() {
    const panel = $('link-panel');
    const issued = this.issued;
    panel.hidden = !issued;
    if (!issued) return;
    this.i18n.render($('link-title'), 'link.title', { name: issued.party.display_name });
    $('link-url').value = issued.url;
    $('link-qr').src = issued.qr.svg;
    $('link-download').href = issued.qr.png;
    this.i18n.render($('link-expires'), 'link.expires', {
      time: formatDateTime(issued.expires_at, this.i18n.language, this.timeZone),
    });
    $('link-copied').hidden = true;
    const sending = $('link-sending');
    sending.hidden = !issued.channel || issued.channel === 'handover';
    if (!sending.hidden) {
      this.i18n.render(sending, 'link.sending', {
        channel: this.i18n.t(`delivery.channel_${issued.channel}`), recipient: issued.recipient,
      });
    }
  }

  async copyLink() {
    const input = $('link-url');
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select(); // no clipboard permission: leave it selected for Ctrl+C
      document.execCommand('copy');
    }
    $('link-copied').hidden = false;
  }
}

startConsole((i18n, api, settings) => new ConsolePage(i18n, api, settings).start());
