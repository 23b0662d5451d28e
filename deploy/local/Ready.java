import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Readiness probe for kafka.sh: exits 0 once the broker answers a metadata request.
 *
 * <p>Usage: {@code Ready BOOTSTRAP TIMEOUT_MS [USERNAME PASSWORD [CA_FILE]]}. With credentials it
 * connects with SASL_PLAINTEXT and SASL/PLAIN, so the SASL listener is proven to accept the test
 * user; with a CA file too, with SASL_SSL and SCRAM-SHA-512, trusting only that CA (PEM) and
 * checking the broker's host name. Exits 1 with the last error on standard error when the
 * deadline passes.
 */
public final class Ready {
  private Ready() {}

  public static void main(String[] args) throws InterruptedException {
    if (args.length != 2 && args.length != 4 && args.length != 5) {
      System.err.println("usage: Ready BOOTSTRAP TIMEOUT_MS [USERNAME PASSWORD [CA_FILE]]");
      System.exit(2);
    }
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Long.parseLong(args[1]));
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    // Short timeouts and back-offs: the probe should notice the broker within a fraction of a second.
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "1500");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "2000");
    props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "50");
    props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "250");
    props.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");
    props.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, "250");
    if (args.length == 5) {
      props.put("security.protocol", "SASL_SSL");
      props.put("sasl.mechanism", "SCRAM-SHA-512");
      props.put("ssl.truststore.type", "PEM");
      props.put("ssl.truststore.location", args[4]);
      props.put(
          "sasl.jaas.config",
          "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
              + args[2] + "\" password=\"" + args[3] + "\";");
    } else if (args.length == 4) {
      props.put("security.protocol", "SASL_PLAINTEXT");
      props.put("sasl.mechanism", "PLAIN");
      props.put(
          "sasl.jaas.config",
          "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
              + args[2] + "\" password=\"" + args[3] + "\";");
    }
    Throwable last = null;
    try (Admin admin = Admin.create(props)) {
      while (System.nanoTime() < deadline) {
        try {
          // A metadata request: the broker is up, has a controller and registered itself.
          int nodes = admin.describeCluster().nodes().get(2, TimeUnit.SECONDS).size();
          admin.listTopics().names().get(2, TimeUnit.SECONDS);
          if (nodes > 0) {
            System.exit(0);
          }
        } catch (Exception e) {
          last = e;
        }
        Thread.sleep(100);
      }
    }
    System.err.println("broker at " + args[0] + " did not answer a metadata request: " + last);
    System.exit(1);
  }
}
