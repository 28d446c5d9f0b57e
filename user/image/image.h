/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The map image: what each VIP's map entries must hold, built from the
 * resolved model without touching any map. Eligibility rules live here, in
 * one place: an endpoint gets new connections when ready is not false and
 * terminating is not true. Eligible endpoints come first in a group.
 */
#ifndef KSPLIT_IMAGE_H
#define KSPLIT_IMAGE_H

#include <ksplit/abi.h>
#include "config/model.h"

struct ksi_group {
	uint32_t weight;
	uint32_t n_elig;		/* eligible endpoints, first in be[] */
	uint32_t n_total;
	struct ks_backend *be;		/* ep_id left 0: ids are the applier's business */
};

/*
 * A ks_svc_meta packed: the route, the KS_MAX_GROUPS backends (each
 * NUL-terminated), then the weights. The map value is 1,216 bytes, mostly
 * zeros, and the image, the datapath's record of the maps and its next
 * version each held one per service: 170 MB at 50,000 services.
 * ksi_meta_unpack() gives the map value back, byte for byte.
 */
struct ksi_meta {
	uint32_t len;			/* of b */
	char b[];
};

struct ksi_service {
	struct ks_svc_key key;
	uint32_t total_weight;
	uint32_t n_groups;
	uint16_t passive_failures;	/* ksplit.io/passive-failures, default 3, 0 = off */
	uint16_t flags;			/* KS_SVC_F_* */
	struct ksi_group groups[KS_MAX_GROUPS];
	struct ksi_meta *meta;		/* owned; never NULL in a built image */
};

struct ks_image {
	size_t n;
	struct ksi_service *svcs;	/* sorted by key (memcmp order) */
	uint64_t n_backends;		/* sum of n_total over all groups */
};

/*
 * Active-check verdicts for the image: KS_BE_F_UNHEALTHY, KS_BE_F_UNCHECKED
 * or 0 for an endpoint of a group. NULL view: no active checks at all.
 */
struct ks_health_view {
	uint8_t (*flags)(void *ctx, const struct ksm_group *g, const struct ksm_endpoint *ep);
	void *ctx;
};

int ks_image_build(const struct ks_model *m, struct ks_image *out);
/*
 * Eligibility (docs/health.md): an endpoint takes new connections when it is
 * ready, not terminating, and not failed or unchecked by active checks. A
 * valid group whose endpoints are all ineligible follows the route's
 * ksplit.io/empty-group: "shift" (default) sets its weight to 0 so the others
 * take its share (service flagged degraded), "reject" keeps its weight and
 * refuses that share. If no group has an eligible endpoint, the route panics:
 * health verdicts are ignored and every ready endpoint is used.
 */
int ks_image_build_health(const struct ks_model *m, const struct ks_health_view *hv,
			  struct ks_image *out);
static inline bool ksi_eligible(uint8_t flags)
{
	return !(flags & KS_BE_F_INELIGIBLE);
}
void ks_image_free(struct ks_image *img);
/* NULL when out of memory. */
struct ksi_meta *ksi_meta_pack(const struct ks_svc_meta *m);
struct ksi_meta *ksi_meta_dup(const struct ksi_meta *p);
/* NULL gives an all-zero value. */
void ksi_meta_unpack(const struct ksi_meta *p, struct ks_svc_meta *m);
bool ksi_meta_equal(const struct ksi_meta *a, const struct ksi_meta *b);
/* The route name ("" for NULL). */
const char *ksi_meta_route(const struct ksi_meta *p);
/* Backend j's name ("ns/name:port"), "" past the last. */
const char *ksi_meta_backend(const struct ksi_meta *p, uint32_t j);
int ks_svc_key_cmp(const struct ks_svc_key *a, const struct ks_svc_key *b);
/* True when two services would produce the same map content (ids aside). */
bool ksi_service_equal(const struct ksi_service *a, const struct ksi_service *b);
/* Flags for one endpoint (0 when eligible). */
uint8_t ksi_endpoint_flags(const struct ksm_endpoint *ep);

#endif
