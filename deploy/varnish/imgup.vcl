# Varnish in front of imgup's public delivery (/i/...). See docs/cdn.md.
#
# - Public variants and originals are immutable (the image id is in every URL): cached for as long
#   as imgup says (Cache-Control: public, max-age=31536000, immutable).
# - f_auto answers carry Vary: Accept. Accept is normalised here into three buckets (avif, webp,
#   other), the same decision imgup's negotiation makes, so browsers' many Accept spellings share
#   three objects per URL instead of one each.
# - Signed URLs (?exp=&sig=: private images, the owner's untouched original) and anything the
#   origin marks private are never cached.
# - imgup's cdn-purge job (IMGUP_CDN_PURGE=varnish) sends BAN with X-Purge-Keys: img-{id} ...;
#   one ban covers every URL of the image through the Surrogate-Key header imgup sets. Only
#   addresses in the "purgers" ACL may ban or purge.
vcl 4.1;

import std;

# The imgup API instance(s). Several: use a director (vmod_directors round_robin).
backend imgup {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 5s;
    .first_byte_timeout = 60s;
}

# Where imgup's workers run: they send the BANs.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        # Keys only ([A-Za-z0-9_-], space-separated): nothing else can reach the ban expression.
        if (req.http.X-Purge-Keys !~ "^[A-Za-z0-9_-]+( [A-Za-z0-9_-]+)*$") {
            return (synth(400, "X-Purge-Keys: space-separated surrogate keys"));
        }
        # On obj.http only, so the ban lurker clears matching objects in the background too.
        # The ban argument is split on spaces: [[:blank:]] stands for the separator.
        if (std.ban("obj.http.Surrogate-Key ~ (^|[[:blank:]])(" + regsuball(req.http.X-Purge-Keys, " ", "|") + ")([[:blank:]]|$)")) {
            return (synth(200, "Banned"));
        }
        return (synth(500, std.ban_error()));
    }
    if (req.method == "PURGE") {
        # One exact URL (all its Vary variants); the BAN above is what imgup uses.
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        return (purge);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Only delivery is cacheable; the API, uploads and probes go straight through.
    if (req.url !~ "^/i/") {
        return (pass);
    }
    # Signed delivery: private images, or the owner's original. Never shared.
    if (req.url ~ "[?&](sig|exp)=") {
        return (pass);
    }
    # Delivery reads neither; left in, the built-in VCL would pass every request with them.
    unset req.http.Cookie;
    unset req.http.Authorization;
    # f_auto buckets, decided like src/imaging/negotiate.ts: only explicit types count (image/* and
    # */* do not), and q=0 means "not this type".
    if (req.http.Accept ~ "(?i)image/avif(?!\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$))") {
        set req.http.Accept = "image/avif,image/webp";
    } elseif (req.http.Accept ~ "(?i)image/webp(?!\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$))") {
        set req.http.Accept = "image/webp";
    } else {
        unset req.http.Accept;
    }
    return (hash);
}

sub vcl_pass {
    set req.http.X-Imgup-Pass = "1";
}

sub vcl_backend_response {
    if (bereq.url !~ "^/i/" || bereq.uncacheable) {
        return (deliver);
    }
    # Belt and braces: whatever the origin says is private is never stored, signed or not.
    if (beresp.http.Cache-Control ~ "(?i)(private|no-store|no-cache)" || beresp.http.Set-Cookie) {
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
    # A miss (not yet ready, deleted) is remembered briefly: a purge never has to chase it.
    if (beresp.status == 404) {
        set beresp.ttl = 5s;
        set beresp.grace = 0s;
        return (deliver);
    }
    # Never serve a stale copy of an image past a purge (bans remove graced objects too; this
    # keeps errors from being cached for long instead).
    if (beresp.status >= 500) {
        set beresp.uncacheable = true;
        set beresp.ttl = 5s;
        return (deliver);
    }
    return (deliver);
}

sub vcl_deliver {
    if (req.http.X-Imgup-Pass) {
        set resp.http.X-Cache = "PASS";
    } elseif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # Kept on the stored object for bans; clients have no use for them.
    unset resp.http.Surrogate-Key;
    unset resp.http.Cache-Tag;
}
