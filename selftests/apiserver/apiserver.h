/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ks-apiserver: a stand-in Kubernetes API server for ksplit's tests and bench.
 * One global lock (store.lock) guards everything below: the server is a test
 * fixture, and one lock keeps every list, watch and write trivially consistent.
 */
#ifndef KS_APISERVER_H
#define KS_APISERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include <microhttpd.h>

/* An object serialized without kind/apiVersion; immutable, shared by the store and history. */
struct blob {
	unsigned ref;
	size_t len;
	char s[];
};

struct obj {
	char *ns;		/* "" for cluster-scoped */
	char *name;
	struct blob *b;
};

/* Objects of one (group, resource), whatever version they are served at. */
struct storage {
	struct obj *v;		/* in no order; a delete moves the last entry into the hole */
	size_t n, cap;
	uint32_t *hash;		/* open addressing on (ns, name): index + 1 */
	size_t hcap, tombs;
	size_t *order;		/* indices sorted by (ns, name), valid when sorted */
	bool sorted;
};

/* A growing string. */
struct sbuf {
	char *s;
	size_t len, cap;
};

/* One group/version/resource as discovery shows it. */
struct resdef {
	const char *group;	/* "" for core */
	const char *version;
	const char *resource;
	const char *singular;
	const char *kind;
	const char *shortname;	/* or NULL */
	bool namespaced;
	bool status;		/* has a status subresource */
	bool disabled;		/* runtime: absent from discovery, 404 on its paths */
	struct storage *st;	/* shared by every version of the resource */
};

enum ev_type { EV_ADDED, EV_MODIFIED, EV_DELETED };

struct event {
	uint64_t rv;
	enum ev_type type;
	struct storage *st;
	char *ns;
	struct blob *b;		/* a reference to the stored (or, deleted, last) object */
};

struct store {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* broadcast on every change and every fault */
	uint64_t rv;		/* last resourceVersion handed out */
	uint64_t compacted;	/* watches from an RV below this get 410 */
	struct event *hist;
	size_t nhist, caphist, hist_max;
	unsigned cut_gen;	/* bumped by cut_watches: every older watch ends */
};

extern struct store store;
extern int page_max;

/* resources.c */
struct resdef *res_find(const char *group, const char *version, const char *resource);
struct resdef *res_find_kind(const char *api_version, const char *kind);
struct resdef *res_find_gvr(const char *gvr); /* "G/V/R", "" group as "core" or empty */
json_object *disc_api_versions(const char *addr);
json_object *disc_group_list(void);
json_object *disc_group(const char *group);
json_object *disc_resource_list(const char *group, const char *version);
const char *res_api_version(const struct resdef *r, char *buf, size_t len);
json_object *openapi_root(void);
json_object *openapi_gv(const char *key);
void res_stat_name(const struct resdef *r, const char *sub, char *buf, size_t len);

/* store.c (callers hold store.lock) */
struct blob *blob_new(json_object *o);
struct blob *blob_get(struct blob *b);
void blob_put(struct blob *b);
json_object *blob_parse(const struct blob *b);
bool blob_match(const char *ns, const struct blob *b, const char *want_ns, const char *ls,
		const char *fs);
ssize_t st_find(const struct storage *st, const char *ns, const char *name);
const size_t *st_sorted(struct storage *st);
size_t st_after(struct storage *st, const char *ns, const char *name);
struct blob *st_put(struct storage *st, const char *ns, const char *name, json_object *o,
		    enum ev_type t);
struct blob *st_del(struct storage *st, size_t i);
void hist_compact(void);
size_t hist_first_after(uint64_t rv);
uint64_t next_rv(void);
void sb_add(struct sbuf *sb, const char *s, size_t n);
void sb_str(struct sbuf *sb, const char *s);
void sb_json(struct sbuf *sb, json_object *o);
void sb_typed(struct sbuf *sb, const struct resdef *r, const struct blob *b);

/* patch.c */
void merge_patch(json_object *target, json_object *patch, bool strategic);
const char *obj_str(json_object *o, const char *path);

/* util.c */
enum MHD_Result reply_json(struct MHD_Connection *c, unsigned code, json_object *o);
enum MHD_Result reply_sb(struct MHD_Connection *c, unsigned code, struct sbuf *sb);
enum MHD_Result reply_typed(struct MHD_Connection *c, unsigned code, const struct resdef *r,
			    const struct blob *b);
enum MHD_Result reply_status(struct MHD_Connection *c, unsigned code, const char *reason,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
json_object *status_obj(unsigned code, const char *reason, const char *msg);
void now_rfc3339(char *buf, size_t len);
void new_uid(char *buf, size_t len);
bool selector_match(json_object *o, const char *ns, const char *labels, const char *fields);
char *hex_encode(const char *s);
char *hex_decode(const char *s);
const char *qarg(struct MHD_Connection *c, const char *key);
bool qbool(struct MHD_Connection *c, const char *key);

/* objects.c */
struct route {
	struct resdef *r;
	const char *ns;		/* from the path, or NULL */
	const char *name;	/* or NULL */
	const char *sub;	/* "status" or NULL */
};
enum MHD_Result handle_object(struct MHD_Connection *c, const char *method, struct route *rt,
			      const char *body, size_t len);
enum MHD_Result handle_list(struct MHD_Connection *c, struct route *rt);
enum MHD_Result handle_load(struct MHD_Connection *c, const char *body, size_t len);

/* watch.c */
enum MHD_Result handle_watch(struct MHD_Connection *c, struct route *rt);

/* control.c */
enum MHD_Result handle_control(struct MHD_Connection *c, const char *method, const char *url,
			       const char *body, size_t len);
/* Faults for a Kubernetes request: false to go on, true when *ret is the reply. */
bool fault_gate(struct MHD_Connection *c, enum MHD_Result *ret);
void stat_count(const char *verb, const char *what);
/* A write to one object, key "R/NS/NAME[/SUB]" (cluster-scoped: "R/NAME"). */
void stat_object(const char *verb, const char *key);
/* The interpose fault's merge patch when key is its object (then it is used up), else NULL. */
json_object *control_interpose_take(const char *key);
void control_release_all(void);
bool control_paused(void);

#endif
