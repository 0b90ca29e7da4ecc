// Camera and microphone, the level meter, and the two peer connections of a participant:
// *publish* (we offer our camera and microphone) and *subscribe* (the server offers the others).

const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const GATHER_TIMEOUT_MS = 3000;
const RELAY_GATHER_TIMEOUT_MS = 8000; // relay-only: nothing to offer without a relay candidate
const AFTER_RELAY_MS = 300; // more candidates (other relays, host) gathered meanwhile still go

/** Why the camera or microphone could not be opened, in the terms the pages explain. */
export function mediaErrorKind(error) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return 'insecure';
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
    case 'PermissionDeniedError':
      return 'blocked';
    case 'NotFoundError':
    case 'OverconstrainedError':
    case 'DevicesNotFoundError':
      return 'not_found';
    case 'NotReadableError':
    case 'AbortError':
    case 'TrackStartError':
      return 'in_use';
    default:
      return 'unknown';
  }
}

/** Open the microphone and (unless audio-only) the camera facing `facing` ('user' or 'environment'). */
export async function openLocalMedia({ audioOnly = false, facing = 'user' } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const error = new Error('media devices unavailable (not a secure page?)');
    error.name = 'InsecureContext';
    throw error;
  }
  const constraints = {
    audio: AUDIO_CONSTRAINTS,
    video: audioOnly ? false : { ...VIDEO_CONSTRAINTS, facingMode: { ideal: facing } },
  };
  return navigator.mediaDevices.getUserMedia(constraints);
}

/** A camera track facing `facing`, to swap into a running stream. */
export async function openCamera(facing = 'user') {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { ...VIDEO_CONSTRAINTS, facingMode: { ideal: facing } },
  });
  return stream.getVideoTracks()[0];
}

/** Microphone level (0..1) from a WebAudio AnalyserNode, reported about 15 times a second. */
export class LevelMeter {
  constructor(stream, onLevel) {
    const Context = window.AudioContext || window.webkitAudioContext;
    this._context = new Context();
    this._source = this._context.createMediaStreamSource(stream);
    this._analyser = this._context.createAnalyser();
    this._analyser.fftSize = 512;
    this._samples = new Float32Array(this._analyser.fftSize);
    this._source.connect(this._analyser);
    this._onLevel = onLevel;
    this._timer = setInterval(() => this._measure(), 66);
    // Phones start audio contexts suspended until a tap; the page resumes it on its next click.
    this._resume = () => this._context.resume().catch(() => {});
    document.addEventListener('click', this._resume, { once: true });
    this._resume();
  }

  _measure() {
    this._analyser.getFloatTimeDomainData(this._samples);
    let sum = 0;
    for (const sample of this._samples) sum += sample * sample;
    const rms = Math.sqrt(sum / this._samples.length);
    this._onLevel(Math.min(1, rms * 4));
  }

  stop() {
    clearInterval(this._timer);
    document.removeEventListener('click', this._resume);
    this._source.disconnect();
    this._context.close().catch(() => {});
  }
}

/**
 * A peer connection as the protocol wants it: max-bundle and exactly the server's ICE servers; with
 * `relayOnly` only the TURN relay's candidates (the fallback when a direct connection did not come up).
 */
export function createPeerConnection(iceServers, relayOnly = false) {
  return new RTCPeerConnection({
    bundlePolicy: 'max-bundle',
    iceServers: iceServers || [],
    iceTransportPolicy: relayOnly ? 'relay' : 'all',
  });
}

/**
 * Resolve once ICE gathering is complete (the protocol sends whole SDP, no trickled candidates), or
 * shortly after the first relay candidate: a TURN relay reaches the server from any network, so the
 * offer does not wait for servers that the network blocks (their attempts run into the timeout).
 */
export function gatheringComplete(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    let afterRelay = null;
    const finish = () => {
      pc.removeEventListener('icegatheringstatechange', done);
      pc.removeEventListener('icecandidate', onCandidate);
      clearTimeout(timer);
      clearTimeout(afterRelay);
      resolve(); // send what was gathered; loopback candidates come first
    };
    const done = () => {
      if (pc.iceGatheringState === 'complete') finish();
    };
    const onCandidate = (event) => {
      if (!afterRelay && event.candidate && / typ relay /.test(event.candidate.candidate)) {
        afterRelay = setTimeout(finish, AFTER_RELAY_MS);
      }
    };
    const timer = setTimeout(finish, timeoutMs);
    pc.addEventListener('icegatheringstatechange', done);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

function fingerprint(sdp) {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp || '');
  return match ? match[1].trim() : '';
}

/** Our publish connection: send-only audio (and video unless audio-only). */
export class PublishConnection {
  constructor(stream, iceServers, onState, relayOnly = false) {
    this.relayOnly = relayOnly;
    this.pc = createPeerConnection(iceServers, relayOnly);
    this.audioSender = null;
    this.videoSender = null;
    for (const track of stream.getTracks()) {
      const transceiver = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind === 'audio') this.audioSender = transceiver.sender;
      else if (!this.videoSender) this.videoSender = transceiver.sender;
    }
    this.pc.addEventListener('connectionstatechange', () => onState(this.pc.connectionState));
  }

  /** The complete offer SDP. */
  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await gatheringComplete(this.pc, this.relayOnly ? RELAY_GATHER_TIMEOUT_MS : GATHER_TIMEOUT_MS);
    return this.pc.localDescription.sdp;
  }

  async accept(answerSdp) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  }

  async replaceVideo(track) {
    if (this.videoSender) await this.videoSender.replaceTrack(track);
  }

  close() {
    this.pc.close();
  }
}

/** Our subscribe connection: the server offers the other participants' tracks, we answer. */
export class SubscribeConnection {
  constructor(iceServers, onState, onTracks) {
    this.iceServers = iceServers;
    this.relayOnly = false;
    this._onState = onState;
    this._onTracks = onTracks;
    this.pc = null;
    this.tracks = []; // [{mid, participant_id, kind}] of the last offer
    this._fingerprint = '';
    this._chain = Promise.resolve();
  }

  _create() {
    if (this.pc) this.pc.close();
    const pc = createPeerConnection(this.iceServers, this.relayOnly);
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this.pc) this._onState(pc.connectionState);
    });
    pc.addEventListener('track', () => {
      if (pc === this.pc) this._publishTracks();
    });
    this.pc = pc;
  }

  /** Answer a `subscribe_offer` (offers are handled one at a time, in order). */
  answer(offerSdp, tracks, { audioOnly = false } = {}) {
    const run = async () => {
      // A new server-side connection (new DTLS fingerprint) cannot be renegotiated: start afresh.
      if (!this.pc || this.pc.signalingState === 'closed' || fingerprint(offerSdp) !== this._fingerprint) {
        this._create();
        this._fingerprint = fingerprint(offerSdp);
      }
      await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
      if (audioOnly) {
        for (const transceiver of this.pc.getTransceivers()) {
          if (transceiver.receiver.track.kind === 'video') transceiver.direction = 'inactive';
        }
      }
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      await gatheringComplete(this.pc, this.relayOnly ? RELAY_GATHER_TIMEOUT_MS : GATHER_TIMEOUT_MS);
      this.tracks = tracks || [];
      this._publishTracks();
      return this.pc.localDescription.sdp;
    };
    const result = this._chain.then(run, run);
    this._chain = result.catch(() => {});
    return result;
  }

  /** Each participant's live tracks, by participant id: {audio, video}. */
  remoteTracks() {
    const byParticipant = new Map();
    if (!this.pc) return byParticipant;
    const transceivers = new Map(this.pc.getTransceivers().map((t) => [t.mid, t]));
    for (const { mid, participant_id: participantId, kind } of this.tracks) {
      const transceiver = transceivers.get(mid);
      if (!transceiver || transceiver.currentDirection === 'inactive' || transceiver.direction === 'inactive') continue;
      const entry = byParticipant.get(participantId) || {};
      entry[kind] = transceiver.receiver.track;
      byParticipant.set(participantId, entry);
    }
    return byParticipant;
  }

  _publishTracks() {
    this._onTracks(this.remoteTracks());
  }

  /** Inbound media per participant from getStats(): frames decoded, audio samples, bytes. */
  async participantStats() {
    const result = {};
    if (!this.pc) return result;
    const owner = new Map(this.tracks.map((t) => [t.mid, t.participant_id]));
    const report = await this.pc.getStats();
    report.forEach((stat) => {
      if (stat.type !== 'inbound-rtp') return;
      const participantId = owner.get(stat.mid);
      if (!participantId) return;
      const entry = (result[participantId] = result[participantId] || {});
      if (stat.kind === 'video') {
        entry.framesDecoded = stat.framesDecoded || 0;
        entry.videoBytes = stat.bytesReceived || 0;
        entry.frameWidth = stat.frameWidth || 0;
      } else if (stat.kind === 'audio') {
        entry.totalSamplesReceived = stat.totalSamplesReceived || 0;
        entry.audioLevel = stat.audioLevel || 0;
        entry.totalAudioEnergy = stat.totalAudioEnergy || 0;
        entry.audioBytes = stat.bytesReceived || 0;
        entry.audioPackets = stat.packetsReceived || 0;
      }
    });
    return result;
  }

  close() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this._fingerprint = '';
    this.tracks = [];
  }
}
