/* cluster_join.h - the calls a node makes to another as its client: a new
 * node started with --join asks a member to add it (MemberAdd), and a
 * member whose client address the others do not know yet tells the leader
 * (MemberAdd for itself, which the leader turns into a MEMBER entry). Each
 * is one blocking call at a time on a thread of its own, so the loop never
 * waits: the thread gets copies of what it sends, touches nothing of the
 * loop's, and leaves a flag when it is done. */
#ifndef KV_CLUSTER_JOIN_H
#define KV_CLUSTER_JOIN_H

struct kv_cluster;

/* --join MEMBER: asks MEMBER (a client address; the leader's is followed)
 * to add this node, retrying for up to a minute. */
void kv_cluster_join_start(struct kv_cluster *c, const char *member);

/* On a follower, each turn: when the cluster does not know this node's
 * client address and the leader's is known, tells the leader (at most
 * every 2 s). */
void kv_cluster_join_announce(struct kv_cluster *c);

/* On a member that has heard from no leader for a while: asks the other
 * members (at most every 2 s) whether a leader's configuration still has
 * this node; kv_cluster_join_removed() says when one does not. */
void kv_cluster_join_check(struct kv_cluster *c);
int kv_cluster_join_removed(void);

/* Waits for a call in progress to end (bounded by its timeouts). */
void kv_cluster_join_stop(struct kv_cluster *c);

#endif
