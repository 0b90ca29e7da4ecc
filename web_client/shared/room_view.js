// Video tiles of the other participants: one <video> per participant (its audio plays there too),
// with the name, the role and badges for muted and reconnecting; a recess covers every tile (no frozen
// last frame), and a tap on a tile shows its full name (small tiles on a phone cut it).

import { el, value } from './dom.js';

function initials(name) {
  return String(name || '?')
    .split(/\s+/)
    .filter((word) => /^\p{L}/u.test(word))
    .slice(0, 2)
    .map((word) => word[0].toUpperCase())
    .join('') || '?';
}

export class RoomView extends EventTarget {
  /** `place(participant)` returns the container a participant's tile goes into. */
  constructor(i18n, place) {
    super();
    this.i18n = i18n;
    this.place = place;
    this.tiles = new Map();
  }

  /** Show `participants` (from `state`, without ourselves) with the streams of `call`; `recess` covers
   * every tile with the recess notice. */
  update(participants, streams, { recess = false } = {}) {
    const present = new Set();
    for (const participant of participants) {
      present.add(participant.id);
      let tile = this.tiles.get(participant.id);
      if (!tile) {
        tile = this._createTile(participant);
        this.tiles.set(participant.id, tile);
      }
      const container = this.place(participant);
      if (tile.root.parentElement !== container) container.append(tile.root);
      this._updateTile(tile, participant, streams.get(participant.id) || null, recess);
    }
    for (const [id, tile] of this.tiles) {
      if (!present.has(id)) {
        tile.video.srcObject = null;
        tile.root.remove();
        this.tiles.delete(id);
      }
    }
  }

  /** Try again to play every tile (after a click, when autoplay with sound was refused). */
  playAll() {
    for (const tile of this.tiles.values()) tile.video.play().catch(() => {});
  }

  _createTile(participant) {
    const video = el('video', { autoplay: true, playsinline: true, class: 'tile-video' });
    const avatar = value(initials(participant.name), 'span', { class: 'tile-avatar', 'aria-hidden': 'true' });
    const name = value(participant.name, 'span', { class: 'tile-name' });
    const role = el('span', { class: 'tile-role' });
    const muted = el('span', { class: 'badge badge-muted', hidden: true });
    const reconnecting = el('span', { class: 'badge badge-warn', hidden: true });
    this.i18n.render(muted, 'tile.muted');
    this.i18n.render(reconnecting, 'tile.reconnecting');
    const caption = el('figcaption', { class: 'tile-caption' }, name, role, muted, reconnecting);
    const recess = el('div', { class: 'tile-recess', hidden: true });
    this.i18n.render(recess, 'tile.recess');
    const toggle = el('button', { type: 'button', class: 'tile-toggle', 'aria-expanded': 'false' });
    const root = el('figure', {
      class: 'tile',
      dataset: { participantId: participant.id, role: participant.role, expanded: 'false' },
    }, video, avatar, recess, caption, toggle);
    toggle.addEventListener('click', () => {
      const expanded = root.dataset.expanded !== 'true';
      root.dataset.expanded = String(expanded);
      toggle.setAttribute('aria-expanded', String(expanded));
    });
    video.addEventListener('loadedmetadata', () => this._play(video));
    return { root, video, avatar, name, role, muted, reconnecting, recess, toggle, stream: null };
  }

  _updateTile(tile, participant, stream, recess) {
    tile.name.textContent = participant.name;
    tile.name.title = participant.name;
    tile.toggle.setAttribute('aria-label', participant.name);
    tile.recess.hidden = !recess;
    tile.root.dataset.recess = String(recess);
    tile.avatar.textContent = initials(participant.name);
    this.i18n.render(tile.role, `role.${participant.role}`);
    tile.root.dataset.state = participant.state;
    tile.muted.hidden = !(participant.muted || []).includes('audio');
    tile.reconnecting.hidden = participant.state !== 'disconnected';
    const hasVideo = Boolean(stream && stream.getVideoTracks().length)
      && !(participant.muted || []).includes('video') && !participant.audio_only;
    tile.root.classList.toggle('no-video', !hasVideo);
    if (tile.stream !== stream) {
      tile.stream = stream;
      tile.video.srcObject = stream;
      if (stream) this._play(tile.video);
    }
  }

  _play(video) {
    video.play().catch((error) => {
      if (error && error.name === 'NotAllowedError') {
        this.dispatchEvent(new CustomEvent('autoplay-blocked'));
      }
    });
  }
}
