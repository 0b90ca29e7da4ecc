"""The web client: the party's join page, the operator console and the archive, served by the app.

Pages are static HTML and vanilla JavaScript modules (no build step); all data comes from the REST
API and the signaling WebSocket.
"""
