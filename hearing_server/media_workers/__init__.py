"""The control plane's side of the media workers: starting them, placing hearings, proxying to them."""
