// fxcam.json: bounded reading and validation of a file that may be hostile.
// Every limit is checked before the value is used or converted, and messages
// quote at most a short, printable piece of what was seen (issue 9: quoting a
// whole nested value recursed until the stack overflowed).
#include "shim_metadata.hpp"

#include <nlohmann/json.hpp>

#include <cfloat>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <new>
#include <stdexcept>

namespace fxshim {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxQuoted = 40; // characters of a string quoted in a message

[[noreturn]] void fail(const std::string &msg)
{
    throw std::runtime_error("fxcam.json: " + msg);
}

// At most max bytes of s, printable ASCII only (a model file must not put
// terminal escapes into a caller's log), "..." when cut.
std::string printable(const std::string &s, size_t max)
{
    std::string out;
    for (size_t i = 0; i < s.size() && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        out += (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s.size() > max)
        out += "...";
    return out;
}

// A short description of a value, whatever its size: containers by their
// length, strings cut, numbers as written. Never serializes a container.
std::string describe(const json &v)
{
    switch (v.type()) {
    case json::value_t::object: return "an object of " + std::to_string(v.size()) + " keys";
    case json::value_t::array: return "an array of " + std::to_string(v.size()) + " values";
    case json::value_t::string: return "the string \"" + printable(v.get_ref<const std::string &>(), kMaxQuoted) + "\"";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::null: return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return v.dump(); // a scalar: at most ~25 characters
    default: return "a value of another type";
    }
}

// Refuses oversized text and nesting deeper than kMaxMetadataDepth with one
// loop over the bytes, before the parser builds anything.
void check_shape(const std::string &text)
{
    if (text.size() > kMaxMetadataBytes)
        fail("the file is " + std::to_string(text.size()) + " bytes; the limit is " +
             std::to_string(kMaxMetadataBytes) + " bytes");
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxMetadataDepth)
                fail("arrays/objects nested deeper than " + std::to_string(kMaxMetadataDepth) + " levels (byte " +
                     std::to_string(i) + "); fxcam.json needs 2");
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
}

// An integer in lo..hi. JSON integers, and numbers written with a fraction
// part of zero (3.0), qualify; range is checked before any conversion, so
// 1e300 is refused, not cast.
int64_t get_integer(const json &v, const std::string &name, int64_t lo, int64_t hi, const char *valid)
{
    bool integral = false, in_range = false;
    int64_t out = 0;
    if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        integral = true;
        in_range = hi >= 0 && u <= (uint64_t)hi && (int64_t)u >= lo;
        out = in_range ? (int64_t)u : 0;
    } else if (v.is_number_integer()) {
        int64_t s = v.get<int64_t>();
        integral = true;
        in_range = s >= lo && s <= hi;
        out = s;
    } else if (v.is_number_float()) {
        double d = v.get<double>();
        integral = std::isfinite(d) && std::floor(d) == d;
        in_range = integral && d >= (double)lo && d <= (double)hi;
        out = in_range ? (int64_t)d : 0;
    }
    if (!integral)
        fail("\"" + name + "\" must be an integer (" + valid + "); got " + describe(v));
    if (!in_range)
        fail("\"" + name + "\" is " + describe(v) + "; valid: " + valid);
    return out;
}

// A number representable as a finite float.
float get_float(const json &v, const std::string &name)
{
    if (!v.is_number())
        fail("\"" + name + "\" must be a number; got " + describe(v));
    double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > (double)FLT_MAX)
        fail("\"" + name + "\" is " + describe(v) + "; it must be a finite number within +-3.4e38");
    return (float)d;
}

// A string of at most max bytes without control characters.
const std::string &get_string(const json &v, const std::string &name, size_t max, const char *meaning)
{
    if (!v.is_string())
        fail("\"" + name + "\" must be " + meaning + "; got " + describe(v));
    const std::string &s = v.get_ref<const std::string &>();
    if (s.size() > max)
        fail("\"" + name + "\" is " + std::to_string(s.size()) + " bytes long; the limit is " + std::to_string(max));
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f)
            fail("\"" + name + "\" (" + describe(v) + ") contains a control character");
    return s;
}

void get_input_size(const json &v, fx__shim_metadata &md)
{
    if (!v.is_array() || v.size() != 2)
        fail("\"input_size\" must be [height, width] (two integers); got " + describe(v));
    std::string valid = "2.." + std::to_string(kMaxMetadataInputSide);
    md.input_height = (uint32_t)get_integer(v[0], "input_size[0]", 2, kMaxMetadataInputSide, valid.c_str());
    md.input_width = (uint32_t)get_integer(v[1], "input_size[1]", 2, kMaxMetadataInputSide, valid.c_str());
}

void get_floats(const json &v, const char *key, float *dst, uint32_t *count, bool positive)
{
    if (!v.is_array() || (v.size() != 1 && v.size() != 3))
        fail(std::string("\"") + key + "\" must be an array of 1 (gray) or 3 (RGB) numbers; got " + describe(v));
    for (size_t i = 0; i < v.size(); i++) {
        std::string name = std::string(key) + "[" + std::to_string(i) + "]";
        dst[i] = get_float(v[i], name);
        if (positive && !(dst[i] > 0.0f))
            fail("\"" + name + "\" is " + describe(v[i]) + "; std values must be > 0");
    }
    *count = (uint32_t)v.size();
}

// A name that a C parser of fxcam.h knows (fx_intensity_from_name,
// fx_resize_mode_from_name): one list of names, in the library.
int32_t get_name(const json &v, const char *key, fx_status (*parse)(const char *, int32_t *), const char *valid)
{
    int32_t id = 0;
    if (!v.is_string() || parse(v.get_ref<const std::string &>().c_str(), &id) != FX_OK)
        fail(std::string("\"") + key + "\" is " + describe(v) + "; valid: " + valid);
    return id;
}

// "intensity", "bits_stored", "window": how the model's training data was
// brought to [0,1] (fxcam.h, Intensity).
void get_intensity(const json &j, fx__shim_metadata &m)
{
    if (j.contains("intensity"))
        m.intensity = get_name(j["intensity"], "intensity", fx_intensity_from_name,
                               "\"auto\", \"container\", \"bits\", \"minmax\" or \"window\"");
    if (j.contains("bits_stored"))
        m.bits_stored = (uint32_t)get_integer(j["bits_stored"], "bits_stored", 1, 16, "1..16");
    if (j.contains("window")) {
        const json &v = j["window"];
        if (!v.is_array() || v.size() != 2)
            fail("\"window\" must be [center, width] (two numbers, in the image's sample units); got " + describe(v));
        m.window_center = get_float(v[0], "window[0]");
        m.window_width = get_float(v[1], "window[1]");
        if (!(m.window_width > 0.0f))
            fail("\"window[1]\" (the width) is " + describe(v[1]) + "; it must be > 0");
        if (m.intensity == FX_INTENSITY_AUTO && !j.contains("intensity"))
            m.intensity = FX_INTENSITY_WINDOW;
    }
    if (m.intensity == FX_INTENSITY_WINDOW && !(m.window_width > 0.0f))
        fail("\"intensity\" is \"window\" but there is no \"window\": [center, width]");
    if (m.intensity != FX_INTENSITY_WINDOW && j.contains("window"))
        fail("\"window\" is given but \"intensity\" is " + describe(j["intensity"]) +
             "; a window applies to \"intensity\": \"window\"");
    if (m.bits_stored && m.intensity != FX_INTENSITY_AUTO && m.intensity != FX_INTENSITY_BITS)
        fail(std::string("\"bits_stored\" is given but \"intensity\" is ") + fx_intensity_name(m.intensity) +
             "; bits apply to \"auto\" or \"bits\"");
}

// "resize_mode", "resize_size": how images were resized in training.
void get_resize(const json &j, fx__shim_metadata &m)
{
    if (j.contains("resize_mode")) {
        m.resize_mode = get_name(j["resize_mode"], "resize_mode", fx_resize_mode_from_name,
                                 "\"stretch\", \"stretch-antialias\", \"letterbox\" or \"shorter-side-crop\"");
        if (m.resize_mode == FX_RESIZE_DEFAULT)
            m.resize_mode = FX_RESIZE_STRETCH;
    }
    if (j.contains("resize_size")) {
        std::string valid = "2.." + std::to_string(kMaxMetadataInputSide);
        m.resize_size = (uint32_t)get_integer(j["resize_size"], "resize_size", 2, kMaxMetadataInputSide, valid.c_str());
        if (m.resize_mode != FX_RESIZE_SHORTER_SIDE_CROP)
            fail("\"resize_size\" is given but \"resize_mode\" is not \"shorter-side-crop\" (the only mode it "
                 "applies to)");
    }
}

void get_class_names(const json &v, Metadata &md)
{
    if (!v.is_array())
        fail("\"class_names\" must be an array of strings; got " + describe(v));
    md.class_names.clear();
    for (size_t i = 0; i < v.size(); i++)
        md.class_names.push_back(get_string(v[i], "class_names[" + std::to_string(i) + "]", kMaxClassNameBytes,
                                            "a string"));
    md.class_name_ptrs.clear();
    for (const auto &s : md.class_names)
        md.class_name_ptrs.push_back(s.c_str());
    md.meta.class_name_count = (uint32_t)md.class_names.size();
    md.meta.class_names = md.class_name_ptrs.data();
}

} // namespace

void parse_metadata(Metadata &md, const std::string &text)
{
    check_shape(text);
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception &e) {
        // nlohmann quotes the last token read, which can be the whole file:
        // a syntax error (parse_error) or a number too large for any type
        // (out_of_range 406, found by the fuzzer with a 377-digit number).
        throw std::runtime_error("fxcam.json is not valid JSON: " + printable(e.what(), 200));
    }
    if (!j.is_object())
        fail("the top level must be an object {...}; got " + describe(j));
    fx__shim_metadata &m = md.meta;
    m.positive_class = -1;
    if (j.contains("input_size"))
        get_input_size(j["input_size"], m);
    if (j.contains("channels")) {
        m.channels = (uint32_t)get_integer(j["channels"], "channels", 1, 3, "1 or 3");
        if (m.channels == 2)
            fail("\"channels\" is 2; valid: 1 or 3");
    }
    if (j.contains("mean"))
        get_floats(j["mean"], "mean", m.mean, &m.mean_count, false);
    if (j.contains("std"))
        get_floats(j["std"], "std", m.std, &m.std_count, true);
    if (j.contains("class_names"))
        get_class_names(j["class_names"], md);
    if (j.contains("positive_class"))
        m.positive_class = (int32_t)get_integer(j["positive_class"], "positive_class", 0, INT32_MAX,
                                                "a class index, 0..number of classes - 1");
    if (j.contains("output")) {
        const json &v = j["output"];
        bool logits = v.is_string() && v.get_ref<const std::string &>() == "logits";
        bool probabilities = v.is_string() && v.get_ref<const std::string &>() == "probabilities";
        if (!logits && !probabilities)
            fail("\"output\" is " + describe(v) + "; valid: \"logits\" or \"probabilities\"");
        m.output_kind = logits ? FX_OUTPUT_LOGITS : FX_OUTPUT_PROBABILITIES;
    }
    get_intensity(j, m);
    get_resize(j, m);
    if (j.contains("target_layer")) {
        md.target_layer = get_string(j["target_layer"], "target_layer", kMaxLayerNameBytes,
                                     "a string (dotted module path)");
        m.target_layer = md.target_layer.c_str();
    }
}

} // namespace fxshim

extern "C" fx_status fx__shim_metadata_check(const char *text, size_t size)
{
    if (!text)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx__shim_metadata_check: text is NULL");
    try {
        fxshim::Metadata md;
        fxshim::parse_metadata(md, std::string(text, size));
        return FX_OK;
    } catch (const std::bad_alloc &) {
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fxcam.json: out of memory");
    } catch (const std::exception &e) {
        return fx__error(FX_ERR_MODEL, "%s", fxshim::printable(e.what(), 300).c_str());
    } catch (...) {
        return fx__error(FX_ERR_INTERNAL, "fxcam.json: unknown exception");
    }
}
