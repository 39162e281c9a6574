/*
 * ngx_http_mlc_module: mlc inside nginx, as a dynamic module.
 *
 *   load_module modules/ngx_http_mlc_module.so;
 *   http {
 *       mlc_arena  mlc-nginx 64m;                    # http level, once
 *       server {
 *           location = /item {                        # GET /item?key=K
 *               mlc_cache items /srv/items.db
 *                         "SELECT value FROM items WHERE key = ?"
 *                         ttl=60000 neg_ttl=5000 lru=4096;
 *           }
 *           location /admin/ { mlc_admin items; } # set, stats, metrics...
 *       }
 *   }
 *
 * The arena is created (or attached) by the master process while it reads
 * the configuration (postconfiguration), before it forks the workers,
 * which inherit the mapping: the name exists once, with the master's owner
 * and mode, before privileges are dropped; an arena that cannot be made
 * (no room in /dev/shm, a format mismatch) stops nginx at start-up instead
 * of appearing in each worker's log; the workers need no permission on
 * /dev/shm.  A reload re-attaches the same arena by name and keeps what it
 * holds; its size is the one it was created with.  Because the attach is
 * part of reading the configuration, a reload whose attach fails (the
 * file's owner changed, its header damaged, the name replaced) is a bad
 * configuration like any other: nginx logs why and keeps the old cycle,
 * its workers and its handle (a failure in init_module would make the
 * master exit and orphan its workers).
 *
 * The master removes the name when it exits ("keep" leaves it for other
 * programs), but only if no other process has the arena mapped
 * (MLC_ARENA_UNUSED): during a binary upgrade the old and the new master
 * share it, and whichever exits first, the upgraded one or, on a rollback,
 * the new one, leaves it to the other.  An arena that a reload no longer
 * names is removed the same way, at the next reload or at exit, once its
 * workers are gone (ngx_http_mlc_retired).
 *
 * A worker starting (or restarted after a crash) first checks that the
 * file at the name is still the one mapped, with the size mapped: a file
 * truncated behind nginx's back makes every worker that touches the lost
 * pages die of SIGBUS, so a new worker then logs why and exits with
 * nginx's fatal code 2, which the master does not respawn, instead of a
 * crash loop.
 *
 * Each worker process opens one cache handle per namespace in its
 * init_process (a handle is one thread's; nginx workers have one) and one
 * SQLite connection per mlc_cache location, opened on first use.  The
 * loader runs SQLite on the worker's own thread: a read of a local file,
 * during which that worker serves nothing else.  Workers asking for the
 * same key meanwhile sleep in mlc_get() until the one load finishes
 * (single flight), also blocking their event loops; use it for backends
 * whose reads take milliseconds.
 */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <sqlite3.h>
#include <mlc.h>

#define NGX_HTTP_MLC_NONE   0
#define NGX_HTTP_MLC_CACHE  1
#define NGX_HTTP_MLC_ADMIN  2

/* One cache handle of this worker. */
typedef struct {
    ngx_str_t              ns;
    struct mlc_cache      *cache;
} ngx_http_mlc_handle_t;

typedef struct ngx_http_mlc_loc_conf_s ngx_http_mlc_loc_conf_t;

typedef struct {
    ngx_str_t              name;        /* arena (shm name) */
    size_t                 bytes;
    ngx_flag_t             keep;        /* leave the name at exit */
    struct mlc_arena      *arena;       /* opened in the master */
    dev_t                  dev;         /* the file at the name when */
    ino_t                  ino;         /* the master attached it */
    uint64_t               mapped;      /* and its size then */
    ngx_array_t            locs;        /* ngx_http_mlc_loc_conf_t * */
    ngx_array_t            handles;     /* this worker's, by namespace */
} ngx_http_mlc_main_conf_t;

struct ngx_http_mlc_loc_conf_s {
    ngx_uint_t             kind;
    ngx_str_t              ns;
    ngx_str_t              db_path;     /* NUL-terminated */
    ngx_str_t              sql;         /* NUL-terminated */
    int64_t                ttl_ms;
    int64_t                neg_ttl_ms;
    uint32_t               lru_size;
    uint32_t               lock_timeout_ms;
    ngx_uint_t             line;        /* where it was configured */

    /*
     * The conf of the mlc_cache or mlc_admin location a request is served
     * by: this one if it has the directive, else the enclosing location's
     * (merged in).  An "if" block inside such a location is a location of
     * its own with a blank conf of this module, but no content handler:
     * the request keeps the enclosing location's handler, which must find
     * that location's handle and SQLite connection through this pointer.
     */
    ngx_http_mlc_loc_conf_t  *owner;

    /* per worker process (each worker has its own copy of the conf) */
    struct mlc_cache      *cache;
    sqlite3               *db;
    sqlite3_stmt          *stmt;
};

static ngx_int_t ngx_http_mlc_postconf(ngx_conf_t *cf);
static ngx_int_t ngx_http_mlc_init_process(ngx_cycle_t *cycle);
static void ngx_http_mlc_exit_process(ngx_cycle_t *cycle);
static void ngx_http_mlc_exit_master(ngx_cycle_t *cycle);
static void *ngx_http_mlc_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_mlc_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mlc_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_mlc_arena(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mlc_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_mlc_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_mlc_item_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mlc_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mlc_add_variables(ngx_conf_t *cf);


static ngx_command_t ngx_http_mlc_commands[] = {

    { ngx_string("mlc_arena"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_mlc_arena,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mlc_cache"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_mlc_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mlc_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_mlc_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t ngx_http_mlc_module_ctx = {
    ngx_http_mlc_add_variables,            /* preconfiguration */
    ngx_http_mlc_postconf,                 /* postconfiguration */
    ngx_http_mlc_create_main_conf,         /* create main configuration */
    NULL,                                  /* init main configuration */
    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */
    ngx_http_mlc_create_loc_conf,          /* create location configuration */
    ngx_http_mlc_merge_loc_conf            /* merge location configuration */
};


ngx_module_t ngx_http_mlc_module = {
    NGX_MODULE_V1,
    &ngx_http_mlc_module_ctx,              /* module context */
    ngx_http_mlc_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_mlc_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_mlc_exit_process,             /* exit process */
    ngx_http_mlc_exit_master,              /* exit master */
    NGX_MODULE_V1_PADDING
};


/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static void *
ngx_http_mlc_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_mlc_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mlc_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->locs, cf->pool, 4,
                       sizeof(ngx_http_mlc_loc_conf_t *)) != NGX_OK
        || ngx_array_init(&mcf->handles, cf->pool, 4,
                          sizeof(ngx_http_mlc_handle_t)) != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


static void *
ngx_http_mlc_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_mlc_loc_conf_t));
}


/* A location without mlc_cache or mlc_admin (an "if" block, a nested
 * location) is served, if by us, as the enclosing one's. */
static char *
ngx_http_mlc_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mlc_loc_conf_t  *prev = parent;
    ngx_http_mlc_loc_conf_t  *conf = child;

    if (conf->owner == NULL) {
        conf->owner = prev->owner;
    }

    return NGX_CONF_OK;
}


/* A NUL-terminated copy (config arguments are, but say so explicitly). */
static ngx_int_t
ngx_http_mlc_cstr(ngx_conf_t *cf, ngx_str_t *dst, ngx_str_t *src)
{
    dst->data = ngx_pnalloc(cf->pool, src->len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);
    dst->data[src->len] = '\0';
    dst->len = src->len;

    return NGX_OK;
}


/* "123", "64k", "64m", "1g" */
static ngx_int_t
ngx_http_mlc_parse_bytes(ngx_str_t *s, size_t *out)
{
    size_t      i, n = 0, mul = 1;

    if (s->len == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < s->len && s->data[i] >= '0' && s->data[i] <= '9'; i++) {
        if (n > ((size_t) -1) / 10 - 10) {
            return NGX_ERROR;
        }
        n = n * 10 + (s->data[i] - '0');
    }

    if (i == 0) {
        return NGX_ERROR;
    }

    if (i + 1 == s->len) {
        switch (s->data[i]) {
        case 'k': case 'K': mul = (size_t) 1 << 10; break;
        case 'm': case 'M': mul = (size_t) 1 << 20; break;
        case 'g': case 'G': mul = (size_t) 1 << 30; break;
        default: return NGX_ERROR;
        }

    } else if (i != s->len) {
        return NGX_ERROR;
    }

    if (n > ((size_t) -1) / mul) {
        return NGX_ERROR;
    }

    *out = n * mul;
    return NGX_OK;
}


/*
 * Why @name is no shm name mlc_arena_open() takes, or NULL: the library's
 * rule (include/mlc.h; src/arena.c, arena_path) checked here, so that the
 * directive's line is blamed, not the end of the http block with
 * "invalid argument".
 */
static const char *
ngx_http_mlc_arena_name_bad(ngx_str_t *name)
{
    u_char  *p = name->data, *end = name->data + name->len;

    if (p < end && *p == '/') {
        p++;                    /* "/mlc-x" is "mlc-x" */
    }
    if (p == end) {
        return "is empty";
    }
    if ((size_t) (end - p) > MLC_ARENA_NAME_MAX) {
        return "is longer than 200 bytes";
    }
    if ((end - p == 1 && p[0] == '.')
        || (end - p == 2 && p[0] == '.' && p[1] == '.'))
    {
        return "is \".\" or \"..\"";
    }
    for ( /* void */ ; p < end; p++) {
        if (*p == '/') {
            return "has a '/' after its first byte (it names a file in "
                   "/dev/shm, not a path)";
        }
        if (*p < 0x20) {
            return "has a control byte";
        }
    }
    return NULL;
}


/* mlc_arena_open() refuses a larger arena (include/mlc.h: offsets are 48
 * bits): refused at the directive, where nginx -t sees it, not at the
 * start with "invalid argument" */
#define NGX_HTTP_MLC_ARENA_MAX  ((uint64_t) 1 << 46)

/* mlc_arena <name> <size> [keep]; */
static char *
ngx_http_mlc_arena(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mlc_main_conf_t  *mcf = conf;
    ngx_str_t                 *value = cf->args->elts;
    struct mlc_arena_options   ao = MLC_ARENA_OPTIONS_INIT;
    const char                *why;
    size_t                     min;

    if (mcf->name.len) {
        return "is duplicate";
    }

    why = ngx_http_mlc_arena_name_bad(&value[1]);
    if (why != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mlc_arena: the name \"%V\" %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mlc_cstr(cf, &mcf->name, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mlc_parse_bytes(&value[2], &mcf->bytes) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mlc_arena: bad size \"%V\" (bytes, or with "
                           "k, m or g)", &value[2]);
        return NGX_CONF_ERROR;
    }

    /* 0 would be the library's default size, not what was written; the
     * postconfiguration's check of a too small size stays for the cases
     * only the attach finds */
    ao.flags = MLC_ARENA_CREATE;
    min = (size_t) mlc_arena_min_bytes(&ao);
    if (mcf->bytes < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mlc_arena: %uz bytes is too small: the smallest "
                           "arena is %uz bytes (%uzk)", mcf->bytes, min,
                           (min + 1023) / 1024);
        return NGX_CONF_ERROR;
    }

    if ((uint64_t) mcf->bytes > NGX_HTTP_MLC_ARENA_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mlc_arena: %uz bytes is too large: the largest "
                           "arena is %uL bytes (64 TiB)", mcf->bytes,
                           NGX_HTTP_MLC_ARENA_MAX);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 4) {
        if (ngx_strcmp(value[3].data, "keep") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mlc_arena: unknown option \"%V\"", &value[3]);
            return NGX_CONF_ERROR;
        }
        mcf->keep = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mlc_opt_num(ngx_str_t *v, const char *name, int64_t *out)
{
    size_t      n = ngx_strlen(name);
    ngx_int_t   num;

    if (v->len <= n + 1 || ngx_strncmp(v->data, name, n) != 0
        || v->data[n] != '=')
    {
        return NGX_DECLINED;
    }

    if (v->len - n - 1 == 5 && ngx_strncmp(v->data + n + 1, "never", 5) == 0) {
        *out = MLC_TTL_NEVER;
        return NGX_OK;
    }

    num = ngx_atoi(v->data + n + 1, v->len - n - 1);
    if (num == NGX_ERROR) {
        return NGX_ERROR;
    }

    *out = num;
    return NGX_OK;
}


static ngx_int_t
ngx_http_mlc_register(ngx_conf_t *cf, ngx_http_mlc_loc_conf_t *lcf,
    ngx_http_handler_pt handler)
{
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_mlc_main_conf_t   *mcf;
    ngx_http_mlc_loc_conf_t   **slot;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mlc_module);
    slot = ngx_array_push(&mcf->locs);
    if (slot == NULL) {
        return NGX_ERROR;
    }
    *slot = lcf;
    lcf->line = cf->conf_file->line;
    lcf->owner = lcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = handler;

    return NGX_OK;
}


/* mlc_cache_open() refuses a larger L1 (src/cache.c): every worker would
 * start without its cache and answer 503 */
#define NGX_HTTP_MLC_LRU_MAX  (1 << 28)

/*
 * mlc_cache <namespace> <sqlite-file> <sql> [ttl=ms] [neg_ttl=ms]
 *           [lru=entries] [lock_timeout=ms];
 */
static char *
ngx_http_mlc_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mlc_loc_conf_t  *lcf = conf;
    ngx_str_t                *value = cf->args->elts, db;
    ngx_uint_t                i, bit, seen = 0;
    int64_t                   n;

    if (lcf->kind == NGX_HTTP_MLC_ADMIN) {
        return "cannot share a location with mlc_admin";
    }
    if (lcf->kind != NGX_HTTP_MLC_NONE) {
        return "is duplicate";
    }

    if (cf->args->nelts < 4) {
        return "needs <namespace> <sqlite-file> <sql>";
    }

    if (value[1].len == 0 || value[1].len > MLC_NAME_MAX) {
        return "has a bad namespace name";
    }

    /* SQLite prepares "" (or a comment) to no statement at all, and
     * every request would fail with "not an error" */
    for (i = 0; i < value[3].len; i++) {
        if (value[3].data[i] != ' ' && value[3].data[i] != '\t'
            && value[3].data[i] != '\n' && value[3].data[i] != '\r')
        {
            break;
        }
    }
    if (i == value[3].len) {
        return "has an empty SQL query";
    }

    /* A relative path is the prefix's (nginx -p), as nginx's own files
     * are, not the directory nginx happened to be started from (the
     * workers' cwd).  SQLite's own names, ":memory:" and "file:" URIs,
     * are left as they are. */
    db = value[2];
    if (db.len > 0 && ngx_strcmp(db.data, ":memory:") != 0
        && ngx_strncmp(db.data, "file:", 5) != 0
        && ngx_conf_full_name(cf->cycle, &db, 0) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_mlc_cstr(cf, &lcf->ns, &value[1]) != NGX_OK
        || ngx_http_mlc_cstr(cf, &lcf->db_path, &db) != NGX_OK
        || ngx_http_mlc_cstr(cf, &lcf->sql, &value[3]) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 4; i < cf->args->nelts; i++) {
        n = 0;
        if (ngx_http_mlc_opt_num(&value[i], "ttl", &n) == NGX_OK) {
            bit = 1;
            lcf->ttl_ms = n;
        } else if (ngx_http_mlc_opt_num(&value[i], "neg_ttl", &n) == NGX_OK) {
            bit = 2;
            lcf->neg_ttl_ms = n;
        } else if (ngx_http_mlc_opt_num(&value[i], "lru", &n) == NGX_OK
                   && n > 0 && n <= NGX_HTTP_MLC_LRU_MAX)
        {
            bit = 4;
            lcf->lru_size = (uint32_t) n;
        } else if (ngx_http_mlc_opt_num(&value[i], "lock_timeout", &n)
                   == NGX_OK && n > 0 && n <= 0x7fffffff)
        {
            bit = 8;
            lcf->lock_timeout_ms = (uint32_t) n;
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mlc_cache: bad option \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        /* the last of two would win without a word: "ttl=60000 ...
         * ttl=5" left after an edit is a mistake, not a choice */
        if (seen & bit) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mlc_cache: option \"%V\" repeats an "
                               "earlier one (each is given once)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
        seen |= bit;
    }

    lcf->kind = NGX_HTTP_MLC_CACHE;
    if (ngx_http_mlc_register(cf, lcf, ngx_http_mlc_item_handler) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* mlc_admin [namespace]; (default: the first mlc_cache namespace) */
static char *
ngx_http_mlc_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mlc_loc_conf_t  *lcf = conf;
    ngx_str_t                *value = cf->args->elts;

    if (lcf->kind == NGX_HTTP_MLC_CACHE) {
        return "cannot share a location with mlc_cache";
    }
    if (lcf->kind != NGX_HTTP_MLC_NONE) {
        return "is duplicate";
    }

    if (cf->args->nelts == 2) {
        if (value[1].len == 0 || value[1].len > MLC_NAME_MAX) {
            return "has a bad namespace name";
        }
        if (ngx_http_mlc_cstr(cf, &lcf->ns, &value[1]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    lcf->kind = NGX_HTTP_MLC_ADMIN;
    if (ngx_http_mlc_register(cf, lcf, ngx_http_mlc_admin_handler)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ------------------------------------------------------------------ */
/* The arena: master process                                           */

/*
 * The names of arenas that an earlier cycle of this master opened (without
 * "keep") and that a reload left behind: a configuration that names
 * another arena, or none.  Their cycle's handle closes at the reload, but
 * its workers still map the arena while they finish, so the name cannot
 * go then; the master removes it at exit (or at a later reload), unless
 * it is in use again or another process maps it.  In the module's own
 * memory: the cycles' pools do not outlive their cycle.
 */
typedef struct ngx_http_mlc_retired_s  ngx_http_mlc_retired_t;

struct ngx_http_mlc_retired_s {
    ngx_http_mlc_retired_t  *next;
    u_char                   name[MLC_ARENA_NAME_MAX + 2];  /* "/" + NUL */
};

static ngx_http_mlc_retired_t  *ngx_http_mlc_retired;


/* "/x" and "x" name one arena (/dev/shm/x) */
static ngx_int_t
ngx_http_mlc_same_name(const u_char *a, const u_char *b)
{
    return ngx_strcmp(a + (a[0] == '/'), b + (b[0] == '/')) == 0;
}


static void
ngx_http_mlc_retire(ngx_http_mlc_main_conf_t *mcf)
{
    ngx_http_mlc_retired_t  *r;

    if (mcf->keep || ngx_process != NGX_PROCESS_MASTER
        || mcf->name.len >= sizeof(r->name))
    {
        return;
    }

    for (r = ngx_http_mlc_retired; r; r = r->next) {
        if (ngx_http_mlc_same_name(r->name, mcf->name.data)) {
            return;
        }
    }

    r = malloc(sizeof(*r));
    if (r == NULL) {
        return;                 /* the name stays, as before */
    }
    ngx_memcpy(r->name, mcf->name.data, mcf->name.len + 1);
    r->next = ngx_http_mlc_retired;
    ngx_http_mlc_retired = r;
}


/* Remove the retired names that @p current (NULL: none) does not use and
 * no process maps; the others are kept for the next try. */
static void
ngx_http_mlc_unlink_retired(ngx_log_t *log, ngx_str_t *current)
{
    ngx_http_mlc_retired_t  **rp = &ngx_http_mlc_retired, *r;
    int                       rc;

    while ((r = *rp) != NULL) {
        if (current != NULL
            && ngx_http_mlc_same_name(r->name, current->data))
        {
            *rp = r->next;      /* in use again: its cycle removes it */
            free(r);
            continue;
        }
        rc = mlc_arena_unlink((const char *) r->name, MLC_ARENA_UNUSED);
        if (rc == -EBUSY) {
            rp = &r->next;
            continue;
        }
        if (rc != 0 && rc != -ENOENT) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "mlc_arena \"%s\" (an earlier configuration's): "
                          "unlink: %s", r->name, mlc_strerror(rc));
        } else if (rc == 0) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "mlc_arena \"%s\" (an earlier configuration's) "
                          "removed", r->name);
        }
        *rp = r->next;
        free(r);
    }
}


static void
ngx_http_mlc_arena_cleanup(void *data)
{
    ngx_http_mlc_main_conf_t  *mcf = data;

    if (mcf->arena) {
        mlc_arena_close(mcf->arena);
        mcf->arena = NULL;
        ngx_http_mlc_retire(mcf);
    }
}


static void
ngx_http_mlc_shm_path(ngx_http_mlc_main_conf_t *mcf, char *buf, size_t cap)
{
    const char  *n = (const char *) mcf->name.data;

    snprintf(buf, cap, "/dev/shm/%s", n + (n[0] == '/'));
}


/*
 * Each worker opens one handle per namespace, with the options of the
 * namespace's first mlc_cache: another mlc_cache of that namespace with
 * other options would have them ignored, so that is refused.  Another
 * SQLite file or query is allowed but warned about: the locations share
 * the namespace's entries, whichever loader made them.
 */
static ngx_int_t
ngx_http_mlc_same_ns_check(ngx_conf_t *cf, ngx_http_mlc_main_conf_t *mcf)
{
    ngx_http_mlc_loc_conf_t  **locs = mcf->locs.elts, *a, *b;
    ngx_uint_t                 i, j;

    for (i = 0; i < mcf->locs.nelts; i++) {
        b = locs[i];
        for (j = 0; j < i && b->kind == NGX_HTTP_MLC_CACHE; j++) {
            a = locs[j];
            if (a->kind != NGX_HTTP_MLC_CACHE || a->ns.len != b->ns.len
                || ngx_memcmp(a->ns.data, b->ns.data, a->ns.len) != 0)
            {
                continue;
            }
            if (a->ttl_ms != b->ttl_ms || a->neg_ttl_ms != b->neg_ttl_ms
                || a->lru_size != b->lru_size
                || a->lock_timeout_ms != b->lock_timeout_ms)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "mlc_cache \"%V\" (line %ui): ttl, "
                                   "neg_ttl, lru or lock_timeout differ "
                                   "from the mlc_cache of the same "
                                   "namespace at line %ui (a worker has "
                                   "one handle per namespace, with one "
                                   "set of options)", &b->ns, b->line,
                                   a->line);
                return NGX_ERROR;
            }
            if (ngx_strcmp(a->db_path.data, b->db_path.data) != 0
                || ngx_strcmp(a->sql.data, b->sql.data) != 0)
            {
                ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                                   "mlc_cache \"%V\" (line %ui): another "
                                   "SQLite file or query than the mlc_cache "
                                   "of the same namespace at line %ui: both "
                                   "answer the entries either one loaded",
                                   &b->ns, b->line, a->line);
            }
            break;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mlc_postconf(ngx_conf_t *cf)
{
    ngx_http_mlc_main_conf_t   *mcf;
    ngx_http_mlc_loc_conf_t   **locs;
    ngx_pool_cleanup_t         *cln;
    ngx_uint_t                  i;
    struct mlc_arena_options    ao = MLC_ARENA_OPTIONS_INIT;
    struct mlc_arena_info       ai = MLC_ARENA_INFO_INIT;
    struct stat                 st;
    char                        path[256];
    int                         rc;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mlc_module);

    /* a reload: the arenas that earlier reloads left behind, whose
     * workers are gone by now (else they are tried again at exit) */
    if (ngx_process == NGX_PROCESS_MASTER && !ngx_test_config) {
        ngx_http_mlc_unlink_retired(cf->log,
                                    mcf && mcf->locs.nelts && mcf->name.len
                                    ? &mcf->name : NULL);
    }

    if (mcf == NULL || mcf->locs.nelts == 0) {
        return NGX_OK;
    }

    if (mcf->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mlc_cache and mlc_admin need \"mlc_arena\" "
                           "in the http block");
        return NGX_ERROR;
    }

    /* every mlc_admin without a namespace takes the first mlc_cache's */
    locs = mcf->locs.elts;
    for (i = 0; i < mcf->locs.nelts; i++) {
        if (locs[i]->kind == NGX_HTTP_MLC_CACHE) {
            break;
        }
    }
    if (i < mcf->locs.nelts) {
        ngx_str_t  first = locs[i]->ns;

        for (i = 0; i < mcf->locs.nelts; i++) {
            if (locs[i]->ns.len == 0) {
                locs[i]->ns = first;
            }
        }
    }
    for (i = 0; i < mcf->locs.nelts; i++) {
        if (locs[i]->ns.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mlc_admin (line %ui) needs a namespace: "
                               "there is no mlc_cache", locs[i]->line);
            return NGX_ERROR;
        }
    }

    if (ngx_http_mlc_same_ns_check(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* "nginx -t" and "nginx -s ..." read the configuration too */
    if (ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER) {
        return NGX_OK;
    }

    /* On a reload this runs in the master while the old cycle still has
     * its own handle: both map the same arena until the old one goes. */
    ao.flags = MLC_ARENA_CREATE;
    ao.bytes = mcf->bytes;
    rc = mlc_arena_open(&mcf->arena, (const char *) mcf->name.data, &ao);
    if (rc != 0) {
        size_t  min = rc == -EINVAL ? mlc_arena_min_bytes(&ao) : 0;

        if (min > mcf->bytes) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mlc_arena \"%V\": %uz bytes is too small: "
                               "the smallest arena is %uz bytes (%uzk)",
                               &mcf->name, mcf->bytes, min,
                               (min + 1023) / 1024);
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mlc_arena \"%V\": %s (%d)%s", &mcf->name,
                               mlc_strerror(rc), rc,
                               rc == -EINVAL ? "; something that is not "
                               "an arena (a FIFO, a directory, a link) may "
                               "be at the name" : rc == -EACCES ? "; the "
                               "file at the name belongs to another user"
                               : "");
        }
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        mlc_arena_close(mcf->arena);
        mcf->arena = NULL;
        return NGX_ERROR;
    }
    cln->handler = ngx_http_mlc_arena_cleanup;
    cln->data = mcf;

    ngx_http_mlc_shm_path(mcf, path, sizeof(path));
    if (stat(path, &st) == 0) {
        mcf->dev = st.st_dev;
        mcf->ino = st.st_ino;
    }

    /* An arena that exists keeps its size: say which one is in use. */
    if (mlc_arena_info(mcf->arena, &ai) != 0) {
        ai.bytes = 0;
    }
    mcf->mapped = ai.bytes;
    if (ai.bytes != mcf->bytes) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "mlc_arena \"%V\": the arena exists with %uL bytes, "
                      "not the %uz configured: using it as it is (remove "
                      "/dev/shm/%V while nginx is stopped to resize it)",
                      &mcf->name, (uint64_t) ai.bytes, mcf->bytes,
                      &mcf->name);
    }
    ngx_log_error(NGX_LOG_NOTICE, cf->log, 0,
                  "mlc %s: arena \"%V\" (%uL bytes) ready",
                  mlc_version_string(), &mcf->name, (uint64_t) ai.bytes);
    return NGX_OK;
}


static void
ngx_http_mlc_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_mlc_main_conf_t  *mcf;
    int                        rc;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mlc_module);
    ngx_http_mlc_unlink_retired(cycle->log,
                                mcf && mcf->arena ? &mcf->name : NULL);
    if (mcf == NULL || mcf->arena == NULL) {
        return;
    }

    mlc_arena_close(mcf->arena);
    mcf->arena = NULL;

    if (mcf->keep) {
        return;
    }

    /* the workers are gone: another mapper is another program, or the
     * other master of a binary upgrade (or its rollback) */
    rc = mlc_arena_unlink((const char *) mcf->name.data, MLC_ARENA_UNUSED);
    if (rc == -EBUSY) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "mlc_arena \"%V\" kept: another process (a new "
                      "nginx binary?) has it mapped", &mcf->name);
    } else if (rc != 0 && rc != -ENOENT) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "mlc_arena \"%V\": unlink: %s", &mcf->name,
                      mlc_strerror(rc));
    }
}


/* ------------------------------------------------------------------ */
/* Worker processes                                                    */

static struct mlc_cache *
ngx_http_mlc_handle(ngx_cycle_t *cycle, ngx_http_mlc_main_conf_t *mcf,
    ngx_http_mlc_loc_conf_t *lcf)
{
    ngx_http_mlc_handle_t      *h = mcf->handles.elts;
    struct mlc_cache_options    co = MLC_CACHE_OPTIONS_INIT;
    ngx_uint_t                  i;
    int                         rc;

    for (i = 0; i < mcf->handles.nelts; i++) {
        if (h[i].ns.len == lcf->ns.len
            && ngx_memcmp(h[i].ns.data, lcf->ns.data, lcf->ns.len) == 0)
        {
            return h[i].cache;
        }
    }

    h = ngx_array_push(&mcf->handles);
    if (h == NULL) {
        return NULL;
    }
    h->ns = lcf->ns;
    h->cache = NULL;

    /* the first location of a namespace sets its handle's options (the
     * others have the same: ngx_http_mlc_same_ns_check) */
    co.ttl_ms = lcf->ttl_ms;
    co.neg_ttl_ms = lcf->neg_ttl_ms;
    co.lru_size = lcf->lru_size;
    co.lock_timeout_ms = lcf->lock_timeout_ms;

    rc = mlc_cache_open(&h->cache, mcf->arena, (const char *) lcf->ns.data,
                        &co);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "mlc_cache_open(\"%V\"): %s", &lcf->ns,
                      mlc_strerror(rc));
        h->cache = NULL;
    }

    return h->cache;
}


/* Is the file at the name, if it is still ours, as big as our mapping?
 * stat() needs no permission on the file: workers may run as another
 * user than the master that created it.  Nothing here may read the
 * mapping: past a truncated file's end that is a SIGBUS (mlc_arena_info
 * reads the log's head), so the size compared is the one the master
 * recorded when it attached. */
static ngx_int_t
ngx_http_mlc_size_check(ngx_cycle_t *cycle, ngx_http_mlc_main_conf_t *mcf)
{
    struct stat  st;
    char         path[256];

    ngx_http_mlc_shm_path(mcf, path, sizeof(path));
    if (stat(path, &st) != 0 || st.st_dev != mcf->dev
        || st.st_ino != mcf->ino)
    {
        return NGX_OK;          /* unlinked or replaced: ours is whole */
    }

    if (mcf->mapped == 0 || (uint64_t) st.st_size == mcf->mapped) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                  "mlc_arena \"%V\": %s is %O bytes but %uL are mapped: "
                  "the file was truncated or grown behind nginx, and a "
                  "worker touching the lost pages dies of SIGBUS; not "
                  "starting this worker (restart nginx: a new arena is "
                  "made if the name is removed first)", &mcf->name, path,
                  st.st_size, (unsigned long long) mcf->mapped);
    return NGX_ERROR;
}


/*
 * A handle counts in private memory and flushes to the arena's namespace
 * counters within a second while it is used; an idle worker's handles
 * flush only when asked.  This per-worker timer asks every second, so
 * that the arena-wide figures (mlcctl, the metrics endpoint) never miss
 * what an idle worker counted for more than about a second.  Cancelable:
 * it never holds a graceful shutdown.
 */
static ngx_event_t  ngx_http_mlc_flush_ev;

static void
ngx_http_mlc_flush(ngx_event_t *ev)
{
    ngx_http_mlc_main_conf_t  *mcf = ev->data;
    ngx_http_mlc_handle_t     *h;
    struct mlc_stats           st;
    ngx_uint_t                 i;

    h = mcf->handles.elts;
    for (i = 0; i < mcf->handles.nelts; i++) {
        if (h[i].cache) {
            ngx_memzero(&st, sizeof(st));
            st.size = sizeof(st);
            (void) mlc_stats(h[i].cache, &st);     /* flushes */
        }
    }
    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, 1000);
    }
}


static ngx_int_t
ngx_http_mlc_init_process(ngx_cycle_t *cycle)
{
    ngx_http_mlc_main_conf_t   *mcf;
    ngx_http_mlc_loc_conf_t   **locs;
    ngx_uint_t                  i;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;          /* cache manager and loader */
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mlc_module);
    if (mcf == NULL || mcf->arena == NULL) {
        return NGX_OK;
    }

    if (ngx_http_mlc_size_check(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;       /* exit(2): not respawned */
    }

    /* kind NONE first: the cache kind's options win for a namespace */
    locs = mcf->locs.elts;
    for (i = 0; i < mcf->locs.nelts; i++) {
        if (locs[i]->kind == NGX_HTTP_MLC_CACHE) {
            locs[i]->cache = ngx_http_mlc_handle(cycle, mcf, locs[i]);
        }
    }
    for (i = 0; i < mcf->locs.nelts; i++) {
        if (locs[i]->kind == NGX_HTTP_MLC_ADMIN) {
            locs[i]->cache = ngx_http_mlc_handle(cycle, mcf, locs[i]);
        }
    }

    ngx_http_mlc_flush_ev.handler = ngx_http_mlc_flush;
    ngx_http_mlc_flush_ev.data = mcf;
    ngx_http_mlc_flush_ev.log = cycle->log;
    ngx_http_mlc_flush_ev.cancelable = 1;
    ngx_add_timer(&ngx_http_mlc_flush_ev, 1000);

    return NGX_OK;
}


static void
ngx_http_mlc_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_mlc_main_conf_t   *mcf;
    ngx_http_mlc_loc_conf_t   **locs;
    ngx_http_mlc_handle_t      *h;
    ngx_uint_t                  i;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mlc_module);
    if (mcf == NULL) {
        return;
    }

    if (ngx_http_mlc_flush_ev.timer_set) {
        ngx_del_timer(&ngx_http_mlc_flush_ev);
    }

    locs = mcf->locs.elts;
    for (i = 0; i < mcf->locs.nelts; i++) {
        if (locs[i]->stmt) {
            sqlite3_finalize(locs[i]->stmt);
            locs[i]->stmt = NULL;
        }
        if (locs[i]->db) {
            sqlite3_close(locs[i]->db);
            locs[i]->db = NULL;
        }
        locs[i]->cache = NULL;
    }

    /* closing flushes each handle's counters to the arena */
    h = mcf->handles.elts;
    for (i = 0; i < mcf->handles.nelts; i++) {
        if (h[i].cache) {
            mlc_cache_close(h[i].cache);
            h[i].cache = NULL;
        }
    }
    mcf->handles.nelts = 0;
}


/* ------------------------------------------------------------------ */
/* The loader: SQLite                                                  */

/* sleep_ms(N): a slow backend on demand, for tests; returns 0. */
static void
ngx_http_mlc_sql_sleep(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    int  ms = sqlite3_value_int(argv[0]);

    if (ms > 0) {
        if (ms > 60000) {
            ms = 60000;
        }
        usleep((useconds_t) ms * 1000);
    }
    sqlite3_result_int(ctx, 0);
}


static void
ngx_http_mlc_db_close(ngx_http_mlc_loc_conf_t *lcf)
{
    if (lcf->stmt) {
        sqlite3_finalize(lcf->stmt);
        lcf->stmt = NULL;
    }
    if (lcf->db) {
        sqlite3_close(lcf->db);
        lcf->db = NULL;
    }
}


static int
ngx_http_mlc_db_open(ngx_http_mlc_loc_conf_t *lcf, struct mlc_load *out)
{
    int  rc;

    rc = sqlite3_open_v2((const char *) lcf->db_path.data, &lcf->db,
                         SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(lcf->db, 2000);
        rc = sqlite3_create_function(lcf->db, "sleep_ms", 1, SQLITE_UTF8,
                                     NULL, ngx_http_mlc_sql_sleep, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v3(lcf->db, (const char *) lcf->sql.data, -1,
                                SQLITE_PREPARE_PERSISTENT, &lcf->stmt, NULL);
    }
    if (rc == SQLITE_OK && lcf->stmt == NULL) {
        snprintf(out->errmsg, sizeof(out->errmsg), "sqlite %s: the query "
                 "is only a comment", (const char *) lcf->db_path.data);
        ngx_http_mlc_db_close(lcf);
        return -EIO;
    }
    if (rc != SQLITE_OK) {
        snprintf(out->errmsg, sizeof(out->errmsg), "sqlite %s: %s",
                 (const char *) lcf->db_path.data,
                 lcf->db ? sqlite3_errmsg(lcf->db) : sqlite3_errstr(rc));
        ngx_http_mlc_db_close(lcf);
        return -EIO;
    }

    return 0;
}


static void
ngx_http_mlc_free(void *data)
{
    free(data);
}


/* SELECT value ... WHERE key = ?: a row is the value, no row is "not
 * found" (a negative entry), an error is a loader error. */
static int
ngx_http_mlc_loader(void *arg, const void *key, size_t key_len,
    struct mlc_load *out)
{
    ngx_http_mlc_loc_conf_t  *lcf = arg;
    const void               *col;
    void                     *copy;
    int                       rc, n;

    if (lcf->stmt == NULL && (rc = ngx_http_mlc_db_open(lcf, out)) != 0) {
        return rc;
    }

    rc = sqlite3_bind_text(lcf->stmt, 1, key, (int) key_len, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(lcf->stmt);
    }

    if (rc == SQLITE_ROW) {
        n = sqlite3_column_bytes(lcf->stmt, 0);
        col = sqlite3_column_blob(lcf->stmt, 0);
        copy = malloc(n > 0 ? (size_t) n : 1);
        if (copy == NULL) {
            sqlite3_reset(lcf->stmt);
            snprintf(out->errmsg, sizeof(out->errmsg), "out of memory");
            return -ENOMEM;
        }
        if (n > 0) {
            memcpy(copy, col, (size_t) n);
        }
        sqlite3_reset(lcf->stmt);
        sqlite3_clear_bindings(lcf->stmt);
        out->data = copy;
        out->len = (size_t) n;
        out->release = ngx_http_mlc_free;
        return MLC_LOAD_VALUE;
    }

    if (rc == SQLITE_DONE) {
        sqlite3_reset(lcf->stmt);
        sqlite3_clear_bindings(lcf->stmt);
        return MLC_LOAD_NOTFOUND;
    }

    snprintf(out->errmsg, sizeof(out->errmsg), "sqlite %s: %s",
             (const char *) lcf->db_path.data, sqlite3_errmsg(lcf->db));
    /* start over with a fresh connection next time */
    ngx_http_mlc_db_close(lcf);
    return -EIO;
}


/* ------------------------------------------------------------------ */
/* Responses                                                           */

static ngx_int_t
ngx_http_mlc_header(ngx_http_request_t *r, const char *name, ngx_str_t *val)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *val;
    h->lowcase_key = NULL;
    return NGX_OK;
}


/* Send @status with a copy of @data as the body (text/plain, or JSON). */
static ngx_int_t
ngx_http_mlc_send(ngx_http_request_t *r, ngx_uint_t status, ngx_uint_t level,
    const void *data, size_t len, ngx_uint_t json)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;
    ngx_str_t     v;
    u_char       *p;
    ngx_int_t     rc;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    } else {
        ngx_str_set(&r->headers_out.content_type, "text/plain");
    }
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (level) {
        p = ngx_pnalloc(r->pool, 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        *p = (u_char) ('0' + level);
        v.data = p;
        v.len = 1;
        if (ngx_http_mlc_header(r, "X-Cache-Level", &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    v.data = p;
    v.len = ngx_sprintf(p, "%P", ngx_pid) - p;
    if (ngx_http_mlc_header(r, "X-Worker", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    b->last = ngx_cpymem(b->last, data, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;
    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_mlc_text(ngx_http_request_t *r, ngx_uint_t status, const char *msg)
{
    return ngx_http_mlc_send(r, status, 0, msg, ngx_strlen(msg), 0);
}


/*
 * The "key" argument, decoded into the request pool as a form's query is
 * (application/x-www-form-urlencoded, what HTML forms, urlencode() and
 * URLSearchParams write): '+' is a space, %XX a byte, so %2B is a plus.
 * mlc-server reads it so too: the same request is the same key in both.
 */
static ngx_int_t
ngx_http_mlc_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_str_t   arg;
    u_char     *dst, *src;
    size_t      i;

    if (ngx_http_arg(r, (u_char *) "key", 3, &arg) != NGX_OK
        || arg.len == 0)
    {
        return NGX_DECLINED;
    }

    key->data = ngx_pnalloc(r->pool, arg.len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    /* '+' before the %XX are decoded: a %2B stays a plus */
    for (i = 0; i < arg.len; i++) {
        key->data[i] = arg.data[i] == '+' ? ' ' : arg.data[i];
    }

    /* in place: the decoded text is never longer */
    dst = key->data;
    src = key->data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    key->len = dst - key->data;

    return key->len ? NGX_OK : NGX_DECLINED;
}


/* GET /item?key=K */
/*
 * $mlc_status: how mlc answered this request, as $upstream_cache_status
 * says how the proxy cache did.  L1, L2: a value from that level (a hit).
 * NEGATIVE: a cached "not found" from L1 or L2 (a hit).  L3: this worker
 * ran the loader and got a value (a miss).  MISS: the loader found nothing,
 * or the get failed.  STALE: an expired value served (the loader failed,
 * or another process was loading it).  Not found (logged as "-") where no
 * mlc_cache answered.
 */
static ngx_str_t  ngx_http_mlc_status_name = ngx_string("mlc_status");


static ngx_int_t
ngx_http_mlc_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *st = ngx_http_get_module_ctx(r, ngx_http_mlc_module);

    if (st == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }
    v->len = st->len;
    v->data = st->data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    return NGX_OK;
}


static ngx_int_t
ngx_http_mlc_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_mlc_status_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }
    var->get_handler = ngx_http_mlc_status_variable;
    return NGX_OK;
}


/* Remember what $mlc_status says for this request (a static string). */
static void
ngx_http_mlc_set_status(ngx_http_request_t *r, int err,
    const struct mlc_value *v)
{
    static ngx_str_t  l1 = ngx_string("L1"), l2 = ngx_string("L2"),
                      l3 = ngx_string("L3"), miss = ngx_string("MISS"),
                      stale = ngx_string("STALE"),
                      negative = ngx_string("NEGATIVE");
    ngx_str_t        *st;

    if (err != 0) {
        st = &miss;
    } else if (v->flags & MLC_STALE) {
        st = &stale;
    } else if (v->level == MLC_L3) {
        st = (v->flags & MLC_NEGATIVE) ? &miss : &l3;
    } else if (v->flags & MLC_NEGATIVE) {
        st = &negative;
    } else {
        st = v->level == MLC_L1 ? &l1 : &l2;
    }
    ngx_http_set_ctx(r, st, ngx_http_mlc_module);
}


static size_t ngx_http_mlc_utf8_len(const u_char *p, size_t left);

/* Room for a key in a log line: its first 128 bytes, escaped, and "...". */
#define NGX_HTTP_MLC_LOG_KEY  (128 * 4 + 3)

/* A key as it may go into a log line: the client chose its bytes (the
 * query is unescaped, so %0A is a newline), and raw, a newline or a '"'
 * in it could forge a line or end the quoted key early.  Well-formed UTF-8
 * is kept, '"' and a backslash are escaped, a control byte or a byte that
 * is not UTF-8 is written \xHH; past 128 bytes of key, "...".  At most
 * NGX_HTTP_MLC_LOG_KEY bytes out. */
static u_char *
ngx_http_mlc_log_text(u_char *p, const u_char *s, size_t len)
{
    size_t  left = len > 128 ? 128 : len, n;

    while (left > 0) {
        n = ngx_http_mlc_utf8_len(s, left);
        if (n == 0 || *s < 0x20 || *s == 0x7f) {
            p = ngx_sprintf(p, "\\x%02xd", (int) *s);
            s++;
            left--;
        } else if (*s == '"' || *s == '\\') {
            *p++ = '\\';
            *p++ = *s++;
            left--;
        } else {
            p = ngx_cpymem(p, s, n);
            s += n;
            left -= n;
        }
    }
    if (len > 128) {
        p = ngx_cpymem(p, "...", 3);
    }
    return p;
}


static ngx_int_t
ngx_http_mlc_item_handler(ngx_http_request_t *r)
{
    ngx_http_mlc_loc_conf_t  *lcf;
    struct mlc_value          v = { 0 };
    ngx_str_t                 key;
    ngx_int_t                 rc;
    int                       err;
    const char               *msg;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_mlc_key(r, &key);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rc != NGX_OK) {
        return ngx_http_mlc_text(r, NGX_HTTP_BAD_REQUEST, "need ?key=K\n");
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mlc_module);
    lcf = lcf->owner;
    if (lcf == NULL || lcf->cache == NULL) {
        return ngx_http_mlc_text(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "mlc cache not open in this worker\n");
    }

    err = mlc_get(lcf->cache, key.data, key.len, ngx_http_mlc_loader, lcf,
                  &v);
    ngx_http_mlc_set_status(r, err, &v);
    if (err == 0) {
        if (v.flags & MLC_NEGATIVE) {
            rc = ngx_http_mlc_send(r, NGX_HTTP_NOT_FOUND, v.level,
                                   "not found\n", 10, 0);
        } else {
            rc = ngx_http_mlc_send(r, NGX_HTTP_OK, v.level, v.data, v.len, 0);
        }
        mlc_value_release(&v);
        return rc;
    }

    msg = mlc_last_error(lcf->cache);
    {
        u_char  shown[NGX_HTTP_MLC_LOG_KEY];
        size_t  n = ngx_http_mlc_log_text(shown, key.data, key.len) - shown;

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mlc_get \"%*s\": %s: %s", n, shown,
                      mlc_strerror(err), msg);
    }

    if (err == MLC_ELOADER) {
        u_char  buf[256];
        size_t  n = ngx_snprintf(buf, sizeof(buf), "loader: %s\n", msg) - buf;

        return ngx_http_mlc_send(r, NGX_HTTP_BAD_GATEWAY, 3, buf, n, 0);
    }
    if (err == -ETIMEDOUT) {
        return ngx_http_mlc_text(r, NGX_HTTP_GATEWAY_TIME_OUT,
                                 "timed out waiting for another load\n");
    }
    return ngx_http_mlc_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                             mlc_strerror(err));
}


/* ------------------------------------------------------------------ */
/* Admin                                                               */

#define NGX_HTTP_MLC_STATS(X)                                              \
    X(hits_l1) X(hits_l2) X(hits_l3) X(misses) X(negative_hits)            \
    X(stale_served) X(loads) X(loader_errors) X(codec_errors)              \
    X(l1_evictions) X(l2_write_failures) X(sets) X(deletes) X(purges)      \
    X(lock_waits) X(lock_wait_ms) X(lock_timeouts) X(lock_steals)          \
    X(duplicate_loads) X(fenced_writes) X(err_ttl_hits) X(log_published)   \
    X(log_applied) X(log_dropped) X(log_overruns) X(log_stuck) X(forks)

#define NGX_HTTP_MLC_ARENA(X)                                              \
    X(bytes) X(max_items) X(items) X(neg_items) X(page_size) X(pages)      \
    X(pages_free) X(value_max) X(sets) X(evictions) X(expired_reclaimed)   \
    X(index_evictions) X(page_moves) X(orphans_reclaimed) X(repairs)       \
    X(write_failures) X(log_head) X(namespaces) X(format) X(procs)         \
    X(arena_handles) X(cache_handles)

static size_t
ngx_http_mlc_json_stats(char *p, size_t cap, const struct mlc_stats *s)
{
    size_t  n = 0;

#define X(f) n += snprintf(p + n, n < cap ? cap - n : 0, "%s\"" #f "\":%llu", \
                           n > 1 ? "," : "", (unsigned long long) s->f);
    n += snprintf(p, cap, "{");
    NGX_HTTP_MLC_STATS(X)
#undef X
    n += snprintf(p + n, n < cap ? cap - n : 0, "}");
    return n;
}


/* The length of the well-formed UTF-8 sequence at @p p (@p left bytes), or
 * 0 if there is none: a stray byte, an overlong form, a surrogate, past
 * U+10FFFF or cut short.  The same check as tools/utf8.h (mlcctl and
 * mlc-server), copied because the module builds from its own directory
 * against the installed mlc.h, and that header is not installed. */
static size_t
ngx_http_mlc_utf8_len(const u_char *p, size_t left)
{
    size_t  n, i;
    u_char  lo = 0x80, hi = 0xbf;

    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        lo = p[0] == 0xe0 ? 0xa0 : 0x80;
        hi = p[0] == 0xed ? 0x9f : 0xbf;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        lo = p[0] == 0xf0 ? 0x90 : 0x80;
        hi = p[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}


/* @s (NUL-terminated) as the inside of a JSON string: '"', '\\' and
 * control bytes escaped, a byte that is not UTF-8 as U+FFFD (JSON text
 * is UTF-8).  At most 6 bytes out per byte in. */
static u_char *
ngx_http_mlc_json_str(u_char *p, const u_char *s)
{
    size_t  left = ngx_strlen(s), n;

    while (left > 0) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
            *p++ = *s++;
            left--;
        } else if (*s < 0x20 || *s == 0x7f) {
            p = ngx_sprintf(p, "\\u%04xd", (int) *s++);
            left--;
        } else if ((n = ngx_http_mlc_utf8_len(s, left)) == 0) {
            p = ngx_cpymem(p, "\\ufffd", 6);
            s++;
            left--;
        } else {
            p = ngx_cpymem(p, s, n);
            s += n;
            left -= n;
        }
    }
    return p;
}


static ngx_int_t
ngx_http_mlc_stats(ngx_http_request_t *r, ngx_http_mlc_loc_conf_t *lcf)
{
    ngx_http_mlc_main_conf_t  *mcf;
    struct mlc_stats           own = MLC_STATS_INIT;
    struct mlc_stats           all = MLC_STATS_INIT;
    struct mlc_arena_info      ai = MLC_ARENA_INFO_INIT;
    char                      *p;
    size_t                     cap, n = 0;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_mlc_module);

    /* mlc_stats() first: it flushes this handle's counts into the sum */
    if (mlc_stats(lcf->cache, &own) != 0
        || mlc_namespace_stats(mcf->arena, (const char *) lcf->ns.data,
                               &all) != 0
        || mlc_arena_info(mcf->arena, &ai) != 0)
    {
        return ngx_http_mlc_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "mlc stats failed\n");
    }

    /* the counters fit in 8k; each byte of a name takes up to 6 */
    cap = 8192 + 6 * (mcf->name.len + lcf->ns.len);
    p = ngx_pnalloc(r->pool, cap);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    {
        u_char  *q = (u_char *) p;

        q = ngx_sprintf(q, "{\"server\":\"nginx\",\"pid\":%P,\"mlc\":\"%s\","
                        "\"arena\":\"", ngx_pid, mlc_version_string());
        q = ngx_http_mlc_json_str(q, mcf->name.data);
        q = ngx_cpymem(q, "\",\"namespace\":\"", 15);
        q = ngx_http_mlc_json_str(q, lcf->ns.data);
        q = ngx_cpymem(q, "\",\"worker\":", 11);
        n = q - (u_char *) p;
    }
    n += ngx_http_mlc_json_stats(p + n, cap - n, &own);
    n += snprintf(p + n, cap - n, ",\"namespace_total\":");
    n += ngx_http_mlc_json_stats(p + n, cap - n, &all);
    n += snprintf(p + n, cap - n, ",\"arena_info\":{");
    {
        size_t  start = n;

#define X(f) n += snprintf(p + n, cap - n, "%s\"" #f "\":%llu",            \
                           n > start ? "," : "", (unsigned long long) ai.f);
        NGX_HTTP_MLC_ARENA(X)
#undef X
    }
    n += snprintf(p + n, cap - n, "}}\n");

    if (n >= cap) {
        return ngx_http_mlc_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "stats too long\n");
    }

    return ngx_http_mlc_send(r, NGX_HTTP_OK, 0, p, n, 1);
}


/*
 * GET .../metrics: Prometheus's text format, arena-wide, so every worker
 * gives the same figures: each namespace's counters are what all handles
 * of all workers have flushed (this worker's first; the others' within a
 * second, by their flush timer), with the same names as mlcctl stats
 * --format prometheus.
 */
typedef struct {
    char                        name[MLC_NAME_MAX + 1];
    struct mlc_stats            st;
    struct mlc_namespace_info   in;
} ngx_http_mlc_ns_t;

#define NGX_HTTP_MLC_NS_METRICS(X)                                         \
    X(in.items, "items", "gauge", "", "Entries of the namespace.")         \
    X(in.bytes, "bytes", "gauge", "", "Key and value bytes of them.")      \
    X(st.hits_l1, "hits_total", "counter", ",level=\"l1\"",                \
      "Lookups answered with a value they did not load, by level.")        \
    X(st.hits_l2, "hits_total", NULL, ",level=\"l2\"", NULL)               \
    X(st.misses, "misses_total", "counter", "",                            \
      "Lookups that ran the loader, found nothing or failed.")             \
    X(st.negative_hits, "negative_hits_total", "counter", "",              \
      "Hits on negative entries.")                                         \
    X(st.stale_served, "stale_served_total", "counter", "",                \
      "Stale values returned.")                                            \
    X(st.loads, "loads_total", "counter", "", "Loader runs.")              \
    X(st.loader_errors, "load_errors_total", "counter", "",                \
      "Loader runs that failed.")                                          \
    X(st.lock_waits, "lock_waits_total", "counter", "",                    \
      "Lookups that waited for another process's load.")                   \
    X(st.sets, "sets_total", "counter", "", "mlc_set calls that succeeded.") \
    X(st.deletes, "deletes_total", "counter", "", "mlc_delete calls.")     \
    X(st.purges, "purges_total", "counter", "", "mlc_purge calls.")

#define NGX_HTTP_MLC_ARENA_METRICS(X)                                      \
    X(bytes, "bytes", "gauge", "Mapped size of the arena in bytes.")       \
    X(items, "items", "gauge", "Entries linked in the index.")             \
    X(pages_free, "pages_free", "gauge", "Allocator pages free.")          \
    X(sets, "sets_total", "counter", "Successful L2 writes.")              \
    X(evictions, "evictions_total", "counter", "Live entries evicted.")    \
    X(write_failures, "write_failures_total", "counter",                   \
      "Stores refused for lack of room.")                                  \
    X(procs, "processes", "gauge",                                         \
      "Processes with the arena attached (the dead left out on proof).")

/* @s (NUL-terminated) as a Prometheus label value, the text mlcctl gives
 * the same name: well-formed UTF-8 as it is ('"' escaped), and a
 * backslash, a control byte or a byte that is not UTF-8 as the text \\
 * or \xHH, whose backslash is escaped once more.  Raw, a byte that is not
 * UTF-8 made the whole exposition invalid, and names differing only there
 * would have been one series.  At most 5 bytes out per byte in. */
static u_char *
ngx_http_mlc_prom_label(u_char *p, const char *str)
{
    const u_char  *s = (const u_char *) str;
    size_t         left = ngx_strlen(s), n;

    while (left > 0) {
        n = ngx_http_mlc_utf8_len(s, left);
        if (n == 0 || *s < 0x20 || *s == 0x7f || *s == '\\') {
            p = *s == '\\' ? ngx_cpymem(p, "\\\\\\\\", 4)
                           : ngx_sprintf(p, "\\\\x%02xd", (int) *s);
            s++;
            left--;
        } else if (*s == '"') {
            *p++ = '\\';
            *p++ = *s++;
            left--;
        } else {
            p = ngx_cpymem(p, s, n);
            s += n;
            left -= n;
        }
    }
    return p;
}


static ngx_int_t
ngx_http_mlc_metrics(ngx_http_request_t *r)
{
    ngx_http_mlc_main_conf_t  *mcf;
    ngx_http_mlc_handle_t     *h;
    ngx_http_mlc_ns_t         *ns;
    struct mlc_arena_info      ai = MLC_ARENA_INFO_INIT;
    struct mlc_stats           tmp;
    ngx_uint_t                 i, n = 0, cap;
    u_char                    *buf, *p, arena[5 * 256 + 1];
    size_t                     size, alen;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_mlc_module);
    h = mcf->handles.elts;
    for (i = 0; i < mcf->handles.nelts; i++) {     /* ours first */
        if (h[i].cache) {
            ngx_memzero(&tmp, sizeof(tmp));
            tmp.size = sizeof(tmp);
            (void) mlc_stats(h[i].cache, &tmp);
        }
    }
    if (mlc_arena_info(mcf->arena, &ai) != 0) {
        return ngx_http_mlc_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "mlc arena info failed\n");
    }
    cap = ai.namespaces + 8;
    ns = ngx_pcalloc(r->pool, cap * sizeof(*ns));
    if (ns == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; n < cap; i++) {
        if (mlc_arena_namespace(mcf->arena, (uint32_t) i, ns[n].name,
                                sizeof(ns[n].name)) != 0)
        {
            break;
        }
        ns[n].st.size = sizeof(ns[n].st);
        ns[n].in.size = sizeof(ns[n].in);
        if (mlc_namespace_stats(mcf->arena, ns[n].name, &ns[n].st) == 0
            && mlc_namespace_info(mcf->arena, ns[n].name, &ns[n].in) == 0)
        {
            n++;
        }
    }

    if (mcf->name.len > 255) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    p = ngx_http_mlc_prom_label(arena, (const char *) mcf->name.data);
    *p = '\0';
    alen = (size_t) (p - arena);
    /* the text without names fits in 4k; the arena's label is on the 9
     * arena-wide lines too, not only on each namespace's (it can be 1000
     * bytes: 200 that are not UTF-8, 5 each) */
    size = 4096 + 9 * alen + n * (14 * (64 + 5 * MLC_NAME_MAX + alen + 48));
    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    p = ngx_sprintf(buf, "# HELP mlc_build_info The mlc library nginx "
                    "runs with.\n# TYPE mlc_build_info gauge\n"
                    "mlc_build_info{version=\"%s\"} 1\n",
                    mlc_version_string());

#define X(f, m, type, help)                                                \
    p = ngx_sprintf(p, "# HELP mlc_arena_" m " " help "\n"                 \
                    "# TYPE mlc_arena_" m " " type "\n"                    \
                    "mlc_arena_" m "{arena=\"%s\"} %uL\n", arena,          \
                    (uint64_t) ai.f);
    NGX_HTTP_MLC_ARENA_METRICS(X)
#undef X
    p = ngx_sprintf(p, "# HELP mlc_arena_handles Handles open in those "
                    "processes, by kind.\n# TYPE mlc_arena_handles gauge\n"
                    "mlc_arena_handles{arena=\"%s\",kind=\"arena\"} %uD\n"
                    "mlc_arena_handles{arena=\"%s\",kind=\"cache\"} %uL\n",
                    arena, ai.arena_handles, arena,
                    (uint64_t) ai.cache_handles);

#define X(f, m, type, lab, help)                                           \
    if (type != NULL) {                                                    \
        p = ngx_sprintf(p, "# HELP mlc_namespace_" m " %s\n"               \
                        "# TYPE mlc_namespace_" m " %s\n",                 \
                        (const char *) help, (const char *) type);         \
    }                                                                      \
    for (i = 0; i < n; i++) {                                              \
        p = ngx_sprintf(p, "mlc_namespace_" m "{arena=\"%s\",namespace=\"", \
                        arena);                                            \
        p = ngx_http_mlc_prom_label(p, ns[i].name);                        \
        p = ngx_sprintf(p, "\"" lab "} %uL\n", (uint64_t) ns[i].f);        \
    }
    NGX_HTTP_MLC_NS_METRICS(X)
#undef X

    return ngx_http_mlc_send(r, NGX_HTTP_OK, 0, buf, p - buf, 0);
}


static ngx_int_t
ngx_http_mlc_uri_is(ngx_http_request_t *r, const char *tail)
{
    size_t  n = ngx_strlen(tail);

    return r->uri.len >= n
           && ngx_strncmp(r->uri.data + r->uri.len - n, tail, n) == 0;
}


/* The whole request body, copied into one buffer (memory or temp file). */
static ngx_int_t
ngx_http_mlc_body(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_chain_t  *cl;
    ngx_buf_t    *b;
    size_t        len = 0;
    u_char       *p;
    ssize_t       n;

    body->len = 0;
    body->data = (u_char *) "";
    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }
    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }
            p += n;
        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }
    body->len = p - body->data;

    return NGX_OK;
}


static void
ngx_http_mlc_set_body(ngx_http_request_t *r)
{
    ngx_http_mlc_loc_conf_t  *lcf;
    ngx_str_t                 key, body;
    int                       err;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mlc_module);
    lcf = lcf->owner;

    if (ngx_http_mlc_key(r, &key) != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_http_mlc_text(r, NGX_HTTP_BAD_REQUEST, "need ?key=K\n"));
        return;
    }

    if (ngx_http_mlc_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    err = mlc_set(lcf->cache, key.data, key.len, body.data, body.len, NULL);
    if (err != 0) {
        ngx_http_finalize_request(r,
            ngx_http_mlc_text(r, err == -E2BIG
                                 ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                 : NGX_HTTP_INTERNAL_SERVER_ERROR,
                              mlc_strerror(err)));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_mlc_text(r, NGX_HTTP_OK, "set\n"));
}


/*
 * POST   .../set?key=K     body = value    mlc_set
 * DELETE .../item?key=K                    mlc_delete
 * POST   .../purge                         mlc_purge
 * GET    .../stats                         this worker, the namespace, arena
 * GET    .../metrics                       Prometheus, arena-wide
 */
static ngx_int_t
ngx_http_mlc_admin_handler(ngx_http_request_t *r)
{
    ngx_http_mlc_loc_conf_t  *lcf;
    ngx_str_t                 key;
    ngx_int_t                 rc;
    int                       err;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_mlc_module);
    lcf = lcf->owner;
    if (lcf == NULL || lcf->cache == NULL) {
        return ngx_http_mlc_text(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "mlc cache not open in this worker\n");
    }

    if (ngx_http_mlc_uri_is(r, "/set")) {
        if (r->method != NGX_HTTP_POST && r->method != NGX_HTTP_PUT) {
            return NGX_HTTP_NOT_ALLOWED;
        }
        r->request_body_in_single_buf = 1;
        rc = ngx_http_read_client_request_body(r, ngx_http_mlc_set_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }
        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_mlc_uri_is(r, "/item")) {
        if (r->method != NGX_HTTP_DELETE) {
            return NGX_HTTP_NOT_ALLOWED;
        }
        if (ngx_http_mlc_key(r, &key) != NGX_OK) {
            return ngx_http_mlc_text(r, NGX_HTTP_BAD_REQUEST,
                                     "need ?key=K\n");
        }
        err = mlc_delete(lcf->cache, key.data, key.len);
        return err ? ngx_http_mlc_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       mlc_strerror(err))
                   : ngx_http_mlc_text(r, NGX_HTTP_OK, "deleted\n");
    }

    if (ngx_http_mlc_uri_is(r, "/purge")) {
        if (r->method != NGX_HTTP_POST) {
            return NGX_HTTP_NOT_ALLOWED;
        }
        err = mlc_purge(lcf->cache);
        return err ? ngx_http_mlc_text(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       mlc_strerror(err))
                   : ngx_http_mlc_text(r, NGX_HTTP_OK, "purged\n");
    }

    if (ngx_http_mlc_uri_is(r, "/stats")) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return NGX_HTTP_NOT_ALLOWED;
        }
        return ngx_http_mlc_stats(r, lcf);
    }

    if (ngx_http_mlc_uri_is(r, "/metrics")) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return NGX_HTTP_NOT_ALLOWED;
        }
        return ngx_http_mlc_metrics(r);
    }

    return NGX_HTTP_NOT_FOUND;
}
