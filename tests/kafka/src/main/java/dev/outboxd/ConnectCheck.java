package dev.outboxd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.storage.Converter;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;
import org.apache.kafka.connect.storage.StringConverter;

/**
 * Reads records with Kafka's own {@link KafkaConsumer} and turns their key, value and headers back
 * into Connect data with Kafka Connect's own converters, the way a Connect sink (or any consumer
 * using Connect's converters) reads what outboxd wrote. tests/connect_consumer.rs runs it and
 * asserts on what it prints.
 *
 * <pre>
 * java -cp '.tools/kafka/build/classes:.tools/kafka/lib/*' dev.outboxd.ConnectCheck \
 *     BOOTSTRAP TOPIC COUNT KEY_CONVERTER VALUE_CONVERTER
 * </pre>
 *
 * A converter is {@code string}, {@code json} (JsonConverter, schemas.enable=true) or
 * {@code json-noschema}. The topic is read from the beginning of every partition with
 * {@code isolation.level=read_committed}, without joining a group, until COUNT records arrived
 * (30 s at most). For each record one JSON line goes to stdout:
 *
 * <pre>
 * {"partition":0,"offset":0,
 *  "key":{"schema":{...}|null,"value":...,"roundtrip":true},
 *  "value":{...},
 *  "headers":[{"key":"id","schema":{...},"value":"..."}]}
 * </pre>
 *
 * {@code schema} is Connect's schema as JsonConverter writes it ({@code asJsonSchema}; null for
 * schemaless data), {@code value} the Connect value as JSON (structs as objects in field order,
 * bytes as {"base64": ...}), and {@code roundtrip} whether the converter's {@code fromConnectData}
 * of that schema and value gives back the record's bytes exactly. Headers go through
 * SimpleHeaderConverter, Connect's default. Exit status 1 (with a message on stderr) when a
 * converter refuses a record or fewer than COUNT records arrived.
 */
public final class ConnectCheck {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println(
          "usage: ConnectCheck BOOTSTRAP TOPIC COUNT KEY_CONVERTER VALUE_CONVERTER"
              + " (converters: string, json, json-noschema)");
      System.exit(2);
    }
    String bootstrap = args[0];
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    Converter keyConverter = converter(args[3], true);
    Converter valueConverter = converter(args[4], false);
    SimpleHeaderConverter headerConverter = new SimpleHeaderConverter();
    headerConverter.configure(Map.of());
    JsonConverter schemaWriter = new JsonConverter();
    schemaWriter.configure(Map.of("schemas.enable", "true"), false);

    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    List<ObjectNode> out = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      long deadline = System.currentTimeMillis() + 30_000;
      List<TopicPartition> partitions = new ArrayList<>();
      while (partitions.isEmpty() && System.currentTimeMillis() < deadline) {
        List<PartitionInfo> infos =
            consumer.partitionsFor(topic, Duration.ofSeconds(5));
        if (infos != null) {
          for (PartitionInfo p : infos) {
            partitions.add(new TopicPartition(topic, p.partition()));
          }
        }
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      while (out.size() < count && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
          ObjectNode line = NODES.objectNode();
          line.put("partition", r.partition());
          line.put("offset", r.offset());
          line.set("key", side(keyConverter, schemaWriter, topic, r.key(), "key", r));
          line.set("value", side(valueConverter, schemaWriter, topic, r.value(), "value", r));
          ArrayNode headers = line.putArray("headers");
          for (Header h : r.headers()) {
            SchemaAndValue sv = headerConverter.toConnectHeader(topic, h.key(), h.value());
            ObjectNode hn = headers.addObject();
            hn.put("key", h.key());
            hn.set("schema", sv.schema() == null ? NODES.nullNode() : schemaWriter.asJsonSchema(sv.schema()));
            hn.set("value", render(sv.value()));
          }
          out.add(line);
        }
      }
    }
    for (ObjectNode line : out) {
      System.out.println(JSON.writeValueAsString(line));
    }
    if (out.size() < count) {
      System.err.println("ConnectCheck: " + out.size() + " of " + count + " records arrived from " + topic);
      System.exit(1);
    }
  }

  private static Converter converter(String name, boolean isKey) {
    Map<String, String> config = new HashMap<>();
    Converter c;
    switch (name) {
      case "string":
        c = new StringConverter();
        break;
      case "json":
        c = new JsonConverter();
        config.put("schemas.enable", "true");
        break;
      case "json-noschema":
        c = new JsonConverter();
        config.put("schemas.enable", "false");
        break;
      default:
        throw new IllegalArgumentException("unknown converter " + name + " (string, json, json-noschema)");
    }
    c.configure(config, isKey);
    return c;
  }

  /** One side (key or value) of a record: Connect's schema and value, and the roundtrip check. */
  private static ObjectNode side(
      Converter converter, JsonConverter schemaWriter, String topic, byte[] bytes, String what,
      ConsumerRecord<byte[], byte[]> r) {
    SchemaAndValue sv;
    try {
      sv = converter.toConnectData(topic, bytes);
    } catch (RuntimeException e) {
      System.err.println(
          "ConnectCheck: " + converter.getClass().getSimpleName() + " refused the " + what
              + " at partition " + r.partition() + " offset " + r.offset() + ": " + e);
      System.exit(1);
      throw e;
    }
    ObjectNode n = NODES.objectNode();
    n.set("schema", sv.schema() == null ? NODES.nullNode() : schemaWriter.asJsonSchema(sv.schema()));
    n.set("value", render(sv.value()));
    byte[] again = converter.fromConnectData(topic, sv.schema(), sv.value());
    n.put("roundtrip", java.util.Arrays.equals(again, bytes));
    return n;
  }

  /** A Connect value as JSON: structs in field order, bytes as {"base64": ...}. */
  private static JsonNode render(Object v) {
    if (v == null) {
      return NODES.nullNode();
    }
    if (v instanceof Struct) {
      Struct s = (Struct) v;
      ObjectNode o = NODES.objectNode();
      for (Field f : s.schema().fields()) {
        o.set(f.name(), render(s.get(f)));
      }
      return o;
    }
    if (v instanceof List) {
      ArrayNode a = NODES.arrayNode();
      for (Object e : (List<?>) v) {
        a.add(render(e));
      }
      return a;
    }
    if (v instanceof Map) {
      ObjectNode o = NODES.objectNode();
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        o.set(String.valueOf(e.getKey()), render(e.getValue()));
      }
      return o;
    }
    if (v instanceof byte[] || v instanceof ByteBuffer) {
      byte[] b;
      if (v instanceof byte[]) {
        b = (byte[]) v;
      } else {
        ByteBuffer buf = ((ByteBuffer) v).duplicate();
        b = new byte[buf.remaining()];
        buf.get(b);
      }
      ObjectNode o = NODES.objectNode();
      o.put("base64", Base64.getEncoder().encodeToString(b));
      return o;
    }
    return JSON.valueToTree(v);
  }
}
