package calm4j.serve;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The playground in a real browser: Debian's chromium, headless, driven through chromedriver (both installed by
 * .ci/run). It types a prompt, presses Generate, and sees the streamed steps appear. The screenshot is written to
 * target/playground.png.
 */
class PlaygroundBrowserTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium"), CHROMEDRIVER = Path.of("/usr/bin/chromedriver");

    @TempDir
    static Path dir;
    static CompletionServer server;

    @BeforeAll
    static void start() throws Exception {
        calm4j.SystemPackages.require(Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER),
                "Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)");
        server = CompletionServer.start(ServedRuns.train(dir).calm, ServedRuns.options(4, 8, 60));
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    @Test
    void typingAPromptAndPressingGenerateStreamsHighlightedChunks() throws Exception {
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,800");
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort().build();
        WebDriver browser = new ChromeDriver(service, options);
        try {
            browser.get(server.url() + "/");
            WebDriverWait wait = new WebDriverWait(browser, Duration.ofSeconds(30));
            wait.until(d -> d.findElement(By.id("model")).getText().contains("4 tokens per step"));
            WebElement prompt = browser.findElement(By.id("prompt"));
            prompt.clear();
            prompt.sendKeys("the people of this nation");
            browser.findElement(By.id("max-tokens")).clear();
            browser.findElement(By.id("max-tokens")).sendKeys("24");
            browser.findElement(By.id("seed")).sendKeys("5");
            browser.findElement(By.id("generate")).click();
            wait.until(d -> d.findElement(By.id("status")).getText().startsWith("done"));

            List<WebElement> steps = browser.findElements(By.cssSelector("#output .step"));
            assertTrue(steps.size() >= 6, steps.size() + " highlighted steps for 24 tokens at K = 4");
            assertEquals("step even", steps.get(0).getAttribute("class"));
            assertEquals("step odd", steps.get(1).getAttribute("class"), "neighbouring chunks are told apart");
            String output = browser.findElement(By.id("output")).getText();
            assertTrue(output.startsWith("the people of this nation") && output.length() > 30, output);
            assertTrue(browser.findElement(By.id("status")).getText().matches("done \\(\\w+\\): \\d+ tokens in \\d+ "
                    + "steps.*"), browser.findElement(By.id("status")).getText());

            File shot = ((TakesScreenshot) browser).getScreenshotAs(OutputType.FILE);
            Path target = Path.of("target", "playground.png");
            Files.createDirectories(target.getParent());
            Files.copy(shot.toPath(), target, StandardCopyOption.REPLACE_EXISTING);
            assertTrue(Files.size(target) > 1000);
            System.out.println("playground screenshot: " + target.toAbsolutePath());
        } finally {
            browser.quit();
        }
    }
}
