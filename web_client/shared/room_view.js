// Video tiles of the other participants: one <video> per participant (its audio plays there too),
// with the name, the role and badges for muted and reconnecting.

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

  /** Show `participants` (from `state`, without ourselves) with the streams of `call`. */
  update(participants, streams) {
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
      this._updateTile(tile, participant, streams.get(participant.id) || null);
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
    const root = el('figure', {
      class: 'tile',
      dataset: { participantId: participant.id, role: participant.role },
    }, video, avatar, caption);
    video.addEventListener('loadedmetadata', () => this._play(video));
    return { root, video, avatar, name, role, muted, reconnecting, stream: null };
  }

  _updateTile(tile, participant, stream) {
    tile.name.textContent = participant.name;
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
