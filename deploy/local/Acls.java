import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The scorer's least-privilege ACLs, granted by kafka.sh (`start --acl` and `grant`).
 *
 * <p>Usage: {@code Acls BOOTSTRAP PRINCIPAL INPUT OUTPUT DLQ GROUP TRANSACTIONAL_ID_PREFIX}.
 * Connects to the broker's own PLAINTEXT listener (its principal is a super user). Grants exactly:
 * Read on the input topic and the consumer group; Write and Describe on the output and dead-letter
 * topics; Write and Describe on transactional ids starting with the prefix (each replica's id is
 * {@code <group>-<hostname>}); IdempotentWrite on the cluster. Prints each binding it created.
 * docs/security.md lists the same grants as kafka-acls commands and a Strimzi KafkaUser.
 */
public final class Acls {
  private Acls() {}

  private static void allow(
      List<AclBinding> acls,
      String principal,
      ResourceType type,
      String name,
      PatternType pattern,
      AclOperation... operations) {
    for (AclOperation operation : operations) {
      acls.add(
          new AclBinding(
              new ResourcePattern(type, name, pattern),
              new AccessControlEntry(principal, "*", operation, AclPermissionType.ALLOW)));
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 7) {
      System.err.println(
          "usage: Acls BOOTSTRAP PRINCIPAL INPUT OUTPUT DLQ GROUP TRANSACTIONAL_ID_PREFIX");
      System.exit(2);
    }
    String principal = args[1];
    List<AclBinding> acls = new ArrayList<>();
    allow(acls, principal, ResourceType.TOPIC, args[2], PatternType.LITERAL, AclOperation.READ);
    allow(acls, principal, ResourceType.GROUP, args[5], PatternType.LITERAL, AclOperation.READ);
    for (String topic : new String[] {args[3], args[4]}) {
      allow(
          acls,
          principal,
          ResourceType.TOPIC,
          topic,
          PatternType.LITERAL,
          AclOperation.WRITE,
          AclOperation.DESCRIBE);
    }
    allow(
        acls,
        principal,
        ResourceType.TRANSACTIONAL_ID,
        args[6],
        PatternType.PREFIXED,
        AclOperation.WRITE,
        AclOperation.DESCRIBE);
    allow(
        acls,
        principal,
        ResourceType.CLUSTER,
        "kafka-cluster",
        PatternType.LITERAL,
        AclOperation.IDEMPOTENT_WRITE);
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    try (Admin admin = Admin.create(props)) {
      admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
    }
    for (AclBinding acl : acls) {
      System.out.println(acl);
    }
  }
}
