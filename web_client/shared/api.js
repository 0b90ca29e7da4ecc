// The REST API (/api/v1) with the staff session cookie and the CSRF header on every write.

export class ApiError extends Error {
  constructor(status, code, message, fields = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

const SAFE = new Set(['GET', 'HEAD']);

export class Api {
  constructor(base = '/api/v1') {
    this.base = base;
    this.csrfToken = '';
    this.user = null;
  }

  /** The logged-in user and the CSRF token; null when nobody is logged in. */
  async session() {
    try {
      const me = await this.get('/auth/me');
      this.user = me.user;
      this.csrfToken = me.csrf_token;
      return me;
    } catch (error) {
      if (error.status === 401) return null;
      throw error;
    }
  }

  async login(username, password) {
    const me = await this.post('/auth/login', { username, password });
    this.user = me.user;
    this.csrfToken = me.csrf_token;
    return me;
  }

  logout() {
    return this.request('POST', '/auth/logout');
  }

  get(path, query = null) {
    return this.request('GET', path, null, query);
  }

  post(path, body = null) {
    return this.request('POST', path, body);
  }

  patch(path, body) {
    return this.request('PATCH', path, body);
  }

  delete(path) {
    return this.request('DELETE', path);
  }

  async request(method, path, body = null, query = null) {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) {
        if (value !== null && value !== undefined && value !== '') params.set(name, value);
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    const headers = { Accept: 'application/json' };
    if (body !== null) headers['Content-Type'] = 'application/json';
    if (!SAFE.has(method) && this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === null ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, 'network_error', String(error));
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || 'http_error', error.message || response.statusText, error.fields || null);
    }
    return data;
  }
}

/** Send a file as the raw request body (a PDF act): `query` names it, `headers` add to it; answers like `request`. */
Api.prototype.upload = async function upload(path, file, query = {}, headers = {}) {
  const url = `${this.base}${path}?${new URLSearchParams(query).toString()}`;
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        ...headers, Accept: 'application/json', 'Content-Type': file.type || 'application/pdf', 'X-CSRF-Token': this.csrfToken || '',
      },
      credentials: 'same-origin',
      body: file,
    });
  } catch (error) {
    throw new ApiError(0, 'network_error', String(error));
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || 'http_error', error.message || response.statusText, error.fields || null);
  }
  return data;
};

/** The court's name and time zone (public; every page needs them before anything else). */
export async function clientSettings() {
  const response = await fetch('/client/settings.json', { credentials: 'same-origin' });
  if (!response.ok) throw new ApiError(response.status, 'settings_unavailable', response.statusText);
  return response.json();
}
