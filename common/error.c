#include "common/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE_MAX 1024

static _Thread_local char message[MESSAGE_MAX];

/* message = "<head>: <tail>", cut to fit. */
static void set_joined(const char *head, const char *tail)
{
	size_t len = strnlen(head, MESSAGE_MAX - 1);
	size_t room;

	memmove(message, head, len);
	room = MESSAGE_MAX - 1 - len;
	if (room >= 2 && tail) {
		memcpy(message + len, ": ", 2);
		len += 2;
		room -= 2;
		size_t tail_len = strnlen(tail, room);
		memmove(message + len, tail, tail_len);
		len += tail_len;
	}
	message[len] = '\0';
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static ocicache_log_fn log_fn;
static void *log_userdata;
static int log_max_level = -1;

int oc_err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return code;
}

int oc_err_wrap(int code, const char *fmt, ...)
{
	char inner[MESSAGE_MAX];
	char outer[MESSAGE_MAX];
	va_list ap;

	snprintf(inner, sizeof(inner), "%s", message);
	va_start(ap, fmt);
	vsnprintf(outer, sizeof(outer), fmt, ap);
	va_end(ap);
	set_joined(outer, inner[0] ? inner : NULL);
	return code;
}

int oc_err_errno(const char *fmt, ...)
{
	int saved = errno;
	char context[MESSAGE_MAX];
	va_list ap;
	int code = OCICACHE_EIO;

	va_start(ap, fmt);
	vsnprintf(context, sizeof(context), fmt, ap);
	va_end(ap);
	if (saved == ENOMEM)
		code = OCICACHE_ENOMEM;
	else if (saved == ENOENT)
		code = OCICACHE_ENOTFOUND;
	set_joined(context, strerror(saved));
	errno = saved;
	return code;
}

const char *oc_err_message(void)
{
	return message[0] ? message : "no error";
}

const char *ocicache_error_message(void)
{
	return oc_err_message();
}

const char *ocicache_strerror(int code)
{
	switch (code) {
	case OCICACHE_OK:
		return "success";
	case OCICACHE_ENOTFOUND:
		return "not found";
	case OCICACHE_EINUSE:
		return "in use";
	case OCICACHE_EINVAL:
		return "invalid argument";
	case OCICACHE_ENETWORK:
		return "network failure";
	case OCICACHE_EREGISTRY:
		return "registry failure";
	case OCICACHE_EDIGEST:
		return "verification failure";
	case OCICACHE_EFORMAT:
		return "malformed input";
	case OCICACHE_EIO:
		return "I/O failure";
	case OCICACHE_ENOMEM:
		return "out of memory";
	case OCICACHE_EUNSUPPORTED:
		return "unsupported";
	default:
		return "failure";
	}
}

void ocicache_set_log(ocicache_log_fn fn, int max_level, void *userdata)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_userdata = userdata;
	log_max_level = fn ? max_level : -1;
	pthread_mutex_unlock(&log_lock);
}

void oc_log(int level, const char *fmt, ...)
{
	char line[MESSAGE_MAX];
	va_list ap;

	if (level > __atomic_load_n(&log_max_level, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	/* One line at a time, so that worker threads do not interleave. */
	pthread_mutex_lock(&log_lock);
	if (log_fn && level <= log_max_level)
		log_fn(level, line, log_userdata);
	pthread_mutex_unlock(&log_lock);
}
