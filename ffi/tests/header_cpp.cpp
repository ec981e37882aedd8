// The C header from C++17: it compiles with -Wall -Wextra -Werror, links, and works.
#include <envcrypt.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Free {
    void operator()(envcrypt_keyring *k) const { envcrypt_keyring_free(k); }
    void operator()(envcrypt_client *c) const { envcrypt_client_free(c); }
    void operator()(envcrypt_context *c) const { envcrypt_context_free(c); }
    void operator()(envcrypt_session *s) const { envcrypt_session_free(s); }
};

[[noreturn]] void fail(const char *what, envcrypt_result r) {
    std::string msg(envcrypt_error_message(r, nullptr, 0), '\0');
    envcrypt_error_message(r, msg.data(), msg.size() + 1);
    std::fprintf(stderr, "header_cpp: %s: %s (%u)\n", what, msg.c_str(), r);
    std::exit(1);
}

void ok(const char *what, envcrypt_result r) {
    if (r != ENVCRYPT_OK) fail(what, r);
}

}  // namespace

int main() {
    static_assert(ENVCRYPT_OK == 0, "codes are plain integers");
    static_assert(sizeof(envcrypt_result) == 4, "envcrypt_result is uint32_t");
    const std::string version = envcrypt_version();
    if (version.empty()) fail("version", ENVCRYPT_INTERNAL);

    std::vector<uint8_t> key(32, 0x42);
    envcrypt_keyring *kr_raw = nullptr;
    ok("keyring", envcrypt_keyring_raw_aes_new("ns", "name", key.data(), key.size(), &kr_raw));
    std::unique_ptr<envcrypt_keyring, Free> keyring(kr_raw);
    envcrypt_client *c_raw = nullptr;
    ok("client", envcrypt_client_new_with(keyring.get(), 0x0478, 4096, &c_raw));
    std::unique_ptr<envcrypt_client, Free> client(c_raw);
    envcrypt_context *ctx_raw = nullptr;
    ok("context", envcrypt_context_new(&ctx_raw));
    std::unique_ptr<envcrypt_context, Free> ctx(ctx_raw);
    ok("context add", envcrypt_context_add(ctx.get(), "lang", "c++"));

    const std::string text = "from C++";
    std::size_t need = 0;
    if (envcrypt_encrypt(client.get(), ctx.get(), reinterpret_cast<const uint8_t *>(text.data()),
                         text.size(), nullptr, 0, &need) != ENVCRYPT_BUFFER_TOO_SMALL)
        fail("size query", ENVCRYPT_INTERNAL);
    std::vector<uint8_t> message(need);
    std::size_t len = 0;
    ok("encrypt", envcrypt_encrypt(client.get(), ctx.get(),
                                   reinterpret_cast<const uint8_t *>(text.data()), text.size(),
                                   message.data(), message.size(), &len));
    message.resize(len);

    // Back through a session, one byte of output at a time.
    envcrypt_session *s_raw = nullptr;
    ok("session", envcrypt_session_new_decrypt(client.get(), ctx.get(), &s_raw));
    std::unique_ptr<envcrypt_session, Free> session(s_raw);
    std::string plain;
    std::size_t pos = 0;
    uint8_t byte = 0;
    while (pos < message.size()) {
        std::size_t w = 0, r = 0;
        ok("process", envcrypt_session_process(session.get(), &byte, 1, &w,
                                               message.data() + pos, message.size() - pos, &r));
        plain.append(reinterpret_cast<const char *>(&byte), w);
        pos += r;
    }
    while (!envcrypt_session_is_done(session.get())) {
        std::size_t w = 0;
        ok("finish", envcrypt_session_finish(session.get(), &byte, 1, &w));
        plain.append(reinterpret_cast<const char *>(&byte), w);
    }
    if (plain != text) fail("round trip", ENVCRYPT_INTERNAL);
    std::printf("header_cpp: ok (envcrypt %s)\n", version.c_str());
    return 0;
}
