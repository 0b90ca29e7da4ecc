/* The last step of forwarding one RTP packet, in C: header written, SRTP-protected, sent.
 *
 * media/sender.py is the Python side and says why.  libsrtp is not linked here: the caller
 * passes the address of pylibsrtp's srtp_protect / srtp_protect_rtcp and of the session's
 * srtp_t, so the packets are protected by the very session (and replay state) aiortc
 * negotiated.  The socket is a dup() of the connection's selected-pair socket, so closing
 * the connection never leaves this sender writing into a reused descriptor.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_WORDS 1024 /* 4096 bytes: any datagram this server sends, with room for the trailer */
#define TRAILER_ROOM 256  /* more than SRTP_MAX_TRAILER_LEN and SRTP_MAX_SRTCP_TRAILER_LEN */

typedef int (*protect_fn)(void *session, void *packet, int *length);

typedef struct {
    PyObject_HEAD
    protect_fn protect;
    protect_fn protect_rtcp;
    void *session;
    PyObject *owner; /* the pylibsrtp Session: keeps `session` alive while this sender may use it */
    int fd;
    unsigned long long bytes_sent;   /* datagrams' sizes, RTP and RTCP */
    unsigned long long packets_sent; /* RTP packets */
    struct sockaddr_storage address;
    socklen_t address_length;
    uint32_t buffer[BUFFER_WORDS]; /* aligned: libsrtp reads the header as 32-bit words */
} Sender;

static void *pointer_from(PyObject *value) {
    return PyLong_AsVoidPtr(value);
}

static int Sender_init(Sender *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"owner", "protect", "protect_rtcp", "session", "fd", "host", "port", NULL};
    PyObject *owner, *protect, *protect_rtcp, *session;
    int fd, port;
    const char *host;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOisi", keywords, &owner, &protect,
                                     &protect_rtcp, &session, &fd, &host, &port))
        return -1;
    self->protect = (protect_fn)pointer_from(protect);
    self->protect_rtcp = (protect_fn)pointer_from(protect_rtcp);
    self->session = pointer_from(session);
    if (PyErr_Occurred())
        return -1;
    if (!self->protect || !self->protect_rtcp || !self->session) {
        PyErr_SetString(PyExc_ValueError, "null libsrtp function or session");
        return -1;
    }
    memset(&self->address, 0, sizeof(self->address));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&self->address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&self->address;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        self->address_length = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        self->address_length = sizeof(*v6);
    } else {
        PyErr_Format(PyExc_ValueError, "not a numeric IP address: %s", host);
        return -1;
    }
    if (self->fd >= 0)
        close(self->fd);
    Py_INCREF(owner);
    Py_XSETREF(self->owner, owner);
    self->fd = dup(fd);
    if (self->fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *Sender_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs)) {
    Sender *self = (Sender *)type->tp_alloc(type, 0);
    if (self)
        self->fd = -1; /* and owner NULL, as tp_alloc zeroes */
    return (PyObject *)self;
}

static void Sender_dealloc(Sender *self) {
    if (self->fd >= 0)
        close(self->fd);
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Protect the `length` bytes in the buffer and send them: the datagram's size, or -1. */
static Py_ssize_t protect_and_send(Sender *self, protect_fn protect, int length) {
    if (self->fd < 0)
        return -1;
    if (protect(self->session, self->buffer, &length) != 0)
        return -1;
    ssize_t sent = sendto(self->fd, self->buffer, (size_t)length, MSG_DONTWAIT,
                          (struct sockaddr *)&self->address, self->address_length);
    return sent < 0 ? -1 : (Py_ssize_t)sent;
}

static PyObject *send_packet(Sender *self, PyObject *packet, protect_fn protect, int rtp) {
    char *data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(packet, &data, &size) < 0)
        return NULL;
    if (size > (Py_ssize_t)sizeof(self->buffer) - TRAILER_ROOM)
        return PyLong_FromLong(-1);
    memcpy(self->buffer, data, (size_t)size);
    Py_ssize_t sent = protect_and_send(self, protect, (int)size);
    if (sent >= 0) {
        self->bytes_sent += (unsigned long long)sent;
        self->packets_sent += (unsigned long long)rtp;
    }
    return PyLong_FromSsize_t(sent);
}

static PyObject *Sender_send(Sender *self, PyObject *packet) {
    return send_packet(self, packet, self->protect, 1);
}

static PyObject *Sender_send_rtcp(Sender *self, PyObject *packet) {
    return send_packet(self, packet, self->protect_rtcp, 0);
}

/* Write one RTP packet (header, extension block with abs-send-time filled in at abs_at unless
 * it is -1, payload) into the buffer, protect and send it: the datagram's size, or -1. */
static Py_ssize_t forward_packet(Sender *self, unsigned long first, unsigned long second, unsigned long seq,
                                 unsigned long timestamp, unsigned long ssrc, const char *extension,
                                 Py_ssize_t extension_size, long abs_at, const char *payload,
                                 Py_ssize_t payload_size) {
    Py_ssize_t size = 12 + extension_size + payload_size;
    if (size > (Py_ssize_t)sizeof(self->buffer) - TRAILER_ROOM ||
        (abs_at >= 0 && abs_at + 3 > extension_size))
        return -1;
    uint8_t *out = (uint8_t *)self->buffer;
    out[0] = (uint8_t)first;
    out[1] = (uint8_t)second;
    out[2] = (uint8_t)(seq >> 8);
    out[3] = (uint8_t)seq;
    uint32_t word = htonl((uint32_t)timestamp);
    memcpy(out + 4, &word, 4);
    word = htonl((uint32_t)ssrc);
    memcpy(out + 8, &word, 4);
    memcpy(out + 12, extension, (size_t)extension_size);
    if (abs_at >= 0) {
        /* abs-send-time: 6.18 fixed-point seconds of wall-clock time, 24 bits */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint32_t value = (uint32_t)((((uint64_t)now.tv_sec << 18) | (((uint64_t)now.tv_nsec << 18) / 1000000000u)) & 0xFFFFFF);
        out[12 + abs_at] = (uint8_t)(value >> 16);
        out[12 + abs_at + 1] = (uint8_t)(value >> 8);
        out[12 + abs_at + 2] = (uint8_t)value;
    }
    memcpy(out + 12 + extension_size, payload, (size_t)payload_size);
    Py_ssize_t sent = protect_and_send(self, self->protect, (int)size);
    if (sent >= 0) {
        self->bytes_sent += (unsigned long long)sent;
        self->packets_sent++;
    }
    return sent;
}

/* forward(first, second, seq, timestamp, ssrc, extension, abs_send_time_at, payload) */
static PyObject *Sender_forward(Sender *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "forward() takes 8 arguments");
        return NULL;
    }
    unsigned long first = PyLong_AsUnsignedLong(args[0]);
    unsigned long second = PyLong_AsUnsignedLong(args[1]);
    unsigned long seq = PyLong_AsUnsignedLong(args[2]);
    unsigned long timestamp = PyLong_AsUnsignedLong(args[3]);
    unsigned long ssrc = PyLong_AsUnsignedLong(args[4]);
    long abs_at = PyLong_AsLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    char *extension, *payload;
    Py_ssize_t extension_size, payload_size;
    if (PyBytes_AsStringAndSize(args[5], &extension, &extension_size) < 0 ||
        PyBytes_AsStringAndSize(args[7], &payload, &payload_size) < 0)
        return NULL;
    return PyLong_FromSsize_t(forward_packet(self, first, second, seq, timestamp, ssrc, extension,
                                             extension_size, abs_at, payload, payload_size));
}

static PyObject *Sender_close(Sender *self, PyObject *Py_UNUSED(unused)) {
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
    Py_CLEAR(self->owner);
    Py_RETURN_NONE;
}

static PyMethodDef Sender_methods[] = {
    {"send", (PyCFunction)Sender_send, METH_O,
     "Protect one plain RTP packet and send it: the datagram's size, or -1 if nothing was sent."},
    {"send_rtcp", (PyCFunction)Sender_send_rtcp, METH_O,
     "Protect one plain compound RTCP packet and send it: the datagram's size, or -1."},
    {"forward", (PyCFunction)(void (*)(void))Sender_forward, METH_FASTCALL,
     "forward(first, second, seq, timestamp, ssrc, extension, abs_send_time_at, payload): the RTP "
     "header written, the extension block copied (abs-send-time filled in at abs_send_time_at "
     "unless it is -1), the payload appended, protected and sent; the datagram's size, or -1."},
    {"close", (PyCFunction)Sender_close, METH_NOARGS, "Close the sender's socket; nothing is sent after."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Sender_members[] = {
    {"bytes_sent", T_ULONGLONG, offsetof(Sender, bytes_sent), READONLY, "Bytes of the datagrams sent."},
    {"packets_sent", T_ULONGLONG, offsetof(Sender, packets_sent), READONLY, "RTP packets sent."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "media._sender.Sender",
    .tp_doc = "Writes, SRTP-protects and sends the RTP/RTCP packets of one connection.",
    .tp_basicsize = sizeof(Sender),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Sender_new,
    .tp_init = (initproc)Sender_init,
    .tp_dealloc = (destructor)Sender_dealloc,
    .tp_methods = Sender_methods,
    .tp_members = Sender_members,
};

/* ---- Fan-out: one published packet to every down track ------------------------------------
 *
 * A Route holds one down track's rewrite state (media/downtrack.py keeps it there, media/fanout.py
 * says why).  fan_out() forwards a packet to every down track whose route is steady (ready, not
 * held, started) and whose connection sends through a Sender, here; any other down track gets
 * its Python forward() called, in the same order.  The arithmetic is DownTrack.forward's.
 */

#define FLAG_MARKER 1  /* media.published_track.FLAG_MARKER */
#define FLAG_PADDING 2 /* media.published_track.FLAG_PADDING */
#define EPOCH_SETTLED 1000 /* media.downtrack.EPOCH_SETTLED */

typedef struct {
    PyObject_HEAD
    PyObject *out;       /* has .sender: the subscribe connection's current sender */
    PyObject *extension; /* bytes: the header-extension block */
    char steady;
    int first_byte;
    int payload_type;
    unsigned int ssrc;
    int abs_send_time_at;
    unsigned int seq_offset;
    unsigned int ts_offset;
    int epoch_start;     /* -1: none */
    int epoch_out_start; /* -1: none */
    int last_out_seq;    /* -1: none */
    unsigned int last_out_ts;
    double last_sent_at;
    unsigned long long packets_sent;
    unsigned long long octets_sent;
} Route;

static PyObject *sender_name, *forward_name;

static int Route_init(Route *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"out", NULL};
    PyObject *out;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O", keywords, &out))
        return -1;
    Py_INCREF(out);
    Py_XSETREF(self->out, out);
    Py_XSETREF(self->extension, PyBytes_FromStringAndSize(NULL, 0));
    if (!self->extension)
        return -1;
    self->steady = 0;
    self->first_byte = 0x80;
    self->payload_type = 0;
    self->ssrc = 0;
    self->abs_send_time_at = -1;
    self->seq_offset = self->ts_offset = 0;
    self->epoch_start = self->epoch_out_start = self->last_out_seq = -1;
    self->last_out_ts = 0;
    self->last_sent_at = 0.0;
    self->packets_sent = self->octets_sent = 0;
    return 0;
}

static int Route_traverse(Route *self, visitproc visit, void *arg) {
    Py_VISIT(self->out);
    Py_VISIT(self->extension);
    return 0;
}

static int Route_clear(Route *self) {
    Py_CLEAR(self->out);
    Py_CLEAR(self->extension);
    return 0;
}

static void Route_dealloc(Route *self) {
    PyObject_GC_UnTrack(self);
    Route_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Route_members[] = {
    {"out", T_OBJECT_EX, offsetof(Route, out), 0, "Where the packets go: its .sender is looked up per packet."},
    {"extension", T_OBJECT_EX, offsetof(Route, extension), 0, "The header-extension block (bytes)."},
    {"steady", T_BOOL, offsetof(Route, steady), 0, "Ready, not held, started: forwarded by fan_out itself."},
    {"first_byte", T_INT, offsetof(Route, first_byte), 0, "The RTP header's first byte (version, X bit)."},
    {"payload_type", T_INT, offsetof(Route, payload_type), 0, "The leg's payload type."},
    {"ssrc", T_UINT, offsetof(Route, ssrc), 0, "The leg's SSRC."},
    {"abs_send_time_at", T_INT, offsetof(Route, abs_send_time_at), 0, "abs-send-time's offset in the block, -1: none."},
    {"seq_offset", T_UINT, offsetof(Route, seq_offset), 0, "Added to the source's sequence numbers (mod 2^16)."},
    {"ts_offset", T_UINT, offsetof(Route, ts_offset), 0, "Added to the source's timestamps (mod 2^32)."},
    {"epoch_start", T_INT, offsetof(Route, epoch_start), 0, "First source seq of the epoch until settled, -1: none."},
    {"epoch_out_start", T_INT, offsetof(Route, epoch_out_start), 0, "Its rewritten seq, -1: none."},
    {"last_out_seq", T_INT, offsetof(Route, last_out_seq), 0, "Highest sequence number sent, -1: none."},
    {"last_out_ts", T_UINT, offsetof(Route, last_out_ts), 0, "Its timestamp."},
    {"last_sent_at", T_DOUBLE, offsetof(Route, last_sent_at), 0, "When it was sent (time.monotonic())."},
    {"packets_sent", T_ULONGLONG, offsetof(Route, packets_sent), 0, "RTP packets sent (sender reports)."},
    {"octets_sent", T_ULONGLONG, offsetof(Route, octets_sent), 0, "Payload octets sent (sender reports)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "media._sender.Route",
    .tp_doc = "One down track's rewrite state: offsets, epoch, what was sent last.",
    .tp_basicsize = sizeof(Route),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Route_init,
    .tp_dealloc = (destructor)Route_dealloc,
    .tp_traverse = (traverseproc)Route_traverse,
    .tp_clear = (inquiry)Route_clear,
    .tp_members = Route_members,
};

static double monotonic_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Forward on a steady route whose sender is a Sender: 1 if a datagram went out, 0 if not, -1 (an
 * exception set) if the route is unusable. */
static int route_forward(Route *route, Sender *sender, unsigned long seq, unsigned long timestamp, long flags,
                         const char *payload, Py_ssize_t payload_size) {
    if (!route->extension || !PyBytes_Check(route->extension)) {
        PyErr_SetString(PyExc_TypeError, "Route.extension must be bytes");
        return -1;
    }
    if (route->epoch_start >= 0) {
        unsigned long since_start = (seq - (unsigned long)route->epoch_start) & 0xFFFF;
        if (since_start >= 0x8000)
            return 0; /* from before the epoch: the subscriber never had what it refers to */
        if (since_start > EPOCH_SETTLED)
            route->epoch_start = -1;
    }
    unsigned long out_seq = (seq + route->seq_offset) & 0xFFFF;
    unsigned long out_ts = (timestamp + route->ts_offset) & 0xFFFFFFFFul;
    const char *extension = PyBytes_AS_STRING(route->extension);
    Py_ssize_t extension_size = PyBytes_GET_SIZE(route->extension);
    unsigned long first = (unsigned long)route->first_byte | ((flags & FLAG_PADDING) ? 0x20 : 0);
    unsigned long second = (unsigned long)route->payload_type | ((flags & FLAG_MARKER) ? 0x80 : 0);
    int sent = forward_packet(sender, first, second, out_seq, out_ts, route->ssrc, extension, extension_size,
                              route->abs_send_time_at, payload, payload_size) >= 0;
    if (sent) {
        route->packets_sent++;
        route->octets_sent += (unsigned long long)payload_size;
    }
    unsigned long newer = (out_seq - (unsigned long)route->last_out_seq) & 0xFFFF;
    if (route->last_out_seq < 0 || (newer > 0 && newer < 0x8000)) {
        if (route->epoch_out_start >= 0) {
            unsigned long into = (out_seq - (unsigned long)route->epoch_out_start) & 0xFFFF;
            if (into > EPOCH_SETTLED && into < 0x8000)
                route->epoch_out_start = (int)((out_seq - EPOCH_SETTLED) & 0xFFFF);
        }
        route->last_out_seq = (int)out_seq;
        route->last_out_ts = (unsigned int)out_ts;
        route->last_sent_at = monotonic_now();
    }
    return sent;
}

/* fan_out(routes, down_tracks, seq, timestamp, flags, payload, keyframe) */
static PyObject *fan_out(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "fan_out() takes 7 arguments");
        return NULL;
    }
    PyObject *routes = args[0], *downs = args[1];
    if (!PyTuple_Check(routes) || !PyTuple_Check(downs) || PyTuple_GET_SIZE(routes) != PyTuple_GET_SIZE(downs)) {
        PyErr_SetString(PyExc_TypeError, "fan_out() takes two tuples of the same length");
        return NULL;
    }
    unsigned long seq = PyLong_AsUnsignedLong(args[2]);
    unsigned long timestamp = PyLong_AsUnsignedLong(args[3]);
    long flags = PyLong_AsLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    char *payload;
    Py_ssize_t payload_size;
    if (PyBytes_AsStringAndSize(args[5], &payload, &payload_size) < 0)
        return NULL;
    long sent = 0;
    Py_ssize_t count = PyTuple_GET_SIZE(routes);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(routes, i);
        if (!Py_IS_TYPE(item, &RouteType)) {
            PyErr_SetString(PyExc_TypeError, "fan_out() takes Route objects");
            return NULL;
        }
        Route *route = (Route *)item;
        if (route->steady && route->out) {
            PyObject *sender = PyObject_GetAttr(route->out, sender_name);
            if (!sender)
                return NULL;
            if (Py_IS_TYPE(sender, &SenderType)) {
                int forwarded = route_forward(route, (Sender *)sender, seq, timestamp, flags, payload, payload_size);
                Py_DECREF(sender);
                if (forwarded < 0)
                    return NULL;
                sent += forwarded;
                continue;
            }
            Py_DECREF(sender);
        }
        /* not steady, or sending from Python: the down track's own forward() */
        PyObject *call[6] = {PyTuple_GET_ITEM(downs, i), args[2], args[3], args[4], args[5], args[6]};
        PyObject *result = PyObject_VectorcallMethod(forward_name, call, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (!result)
            return NULL;
        Py_DECREF(result);
    }
    return PyLong_FromLong(sent);
}

static PyMethodDef module_methods[] = {
    {"fan_out", (PyCFunction)(void (*)(void))fan_out, METH_FASTCALL,
     "fan_out(routes, down_tracks, seq, timestamp, flags, payload, keyframe): one published packet to "
     "every down track (steady routes sending through a Sender here, the others by their forward()); "
     "the number of packets sent here."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "media._sender",
    .m_doc = "RTP/RTCP protect-and-send and the fan-out of forwarded packets in C (media/sender.py, media/fanout.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__sender(void) {
    if (PyType_Ready(&SenderType) < 0 || PyType_Ready(&RouteType) < 0)
        return NULL;
    sender_name = PyUnicode_InternFromString("sender");
    forward_name = PyUnicode_InternFromString("forward");
    if (!sender_name || !forward_name)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddType(m, &SenderType) < 0 || PyModule_AddType(m, &RouteType) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_MARKER", FLAG_MARKER) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_PADDING", FLAG_PADDING) < 0 ||
        PyModule_AddIntConstant(m, "EPOCH_SETTLED", EPOCH_SETTLED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
