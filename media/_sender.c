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
    Py_ssize_t size = 12 + extension_size + payload_size;
    if (size > (Py_ssize_t)sizeof(self->buffer) - TRAILER_ROOM ||
        (abs_at >= 0 && abs_at + 3 > extension_size))
        return PyLong_FromLong(-1);
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
    return PyLong_FromSsize_t(sent);
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

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "media._sender",
    .m_doc = "RTP/RTCP protect-and-send in C (see media/sender.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__sender(void) {
    if (PyType_Ready(&SenderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&SenderType);
    if (PyModule_AddObject(m, "Sender", (PyObject *)&SenderType) < 0) {
        Py_DECREF(&SenderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
